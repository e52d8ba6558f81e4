"""Model loading: the example trainer's real checkpoints, factories, devices, and every refusal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from bigmodel.serving.loading import (
    ModelLoadError,
    load_checkpoint,
    load_factory,
    place,
    resolve_checkpoint,
    resolve_device,
)
from support.serving import FACTORY, VOCABULARY

SOURCE_ROOT = Path(__file__).resolve().parents[2] / "operator"


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of two checkpoints written by the example trainer itself (steps 2 and 4)."""
    directory = tmp_path_factory.mktemp("checkpoints")
    command = [
        sys.executable, "-m", "bigmodel.runtime.example_trainer", "--steps", "4",
        "--checkpoint-every", "2", "--checkpoint-dir", str(directory), "--batch-size", "2",
        "--seq-len", "16", "--d-model", "16", "--layers", "1", "--heads", "2",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(SOURCE_ROOT), "PYTHONWARNINGS": "ignore"}
    env.update(BIGMODEL_METRICS_HOST="127.0.0.1", BIGMODEL_METRICS_PORT="1")  # not served
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=120)
    return directory


def _rewritten(checkpoints: Path, tmp_path: Path, **changes: Any) -> Path:
    state = torch.load(checkpoints / "step-000000004.pt", weights_only=True)
    for key, value in changes.items():
        if value is None:
            del state[key]
        else:
            state[key] = value
    path = tmp_path / "step-000000001.pt"
    torch.save(state, path)
    return path


def test_a_directory_serves_its_latest_checkpoint(checkpoints: Path) -> None:
    assert resolve_checkpoint(str(checkpoints)).name == "step-000000004.pt"


def test_a_file_path_and_a_file_uri_serve_that_file(checkpoints: Path) -> None:
    path = checkpoints / "step-000000002.pt"
    assert resolve_checkpoint(str(path)) == path
    assert resolve_checkpoint(f"file://{path}") == path


def test_a_trainer_checkpoint_rebuilds_its_model_vocabulary_and_weights(checkpoints: Path) -> None:
    served = load_checkpoint(str(checkpoints))
    state = torch.load(checkpoints / "step-000000004.pt", weights_only=True)
    assert (served.vocab_size, served.context_length) == (len(state["vocabulary"]), 16)
    assert served.tokenizer is not None
    assert served.tokenizer.decode(served.tokenizer.encode("the cat")) == "the cat"
    for name, tensor in served.module.state_dict().items():
        assert torch.equal(tensor, state["model"][name]), name


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("/nonexistent/model", "no such file or directory"),
        ("hf://org/model", "scheme 'hf' is not supported"),
        ("s3://bucket/model.pt", "scheme 's3' is not supported"),
    ],
)
def test_an_unusable_uri_is_a_load_error(uri: str, message: str) -> None:
    with pytest.raises(ModelLoadError, match=message):
        load_checkpoint(uri)


def test_a_directory_without_checkpoints_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"no step-\*\.pt checkpoint"):
        load_checkpoint(str(tmp_path))


def test_a_file_that_is_not_a_checkpoint_is_a_load_error(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelLoadError, match="not a loadable checkpoint"):
        load_checkpoint(str(path))


def test_a_checkpoint_holding_arbitrary_objects_is_refused_not_executed(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    torch.save({"model": {}, "payload": Path("/")}, path)  # needs unpickling of a class
    with pytest.raises(ModelLoadError, match="not a loadable checkpoint"):
        load_checkpoint(str(path))


def test_a_checkpoint_without_its_config_names_the_fix(checkpoints: Path, tmp_path: Path) -> None:
    path = _rewritten(checkpoints, tmp_path, config=None)
    with pytest.raises(ModelLoadError, match=r"no model 'config'.*--model-factory"):
        load_checkpoint(str(path))


def test_weights_that_do_not_match_the_config_are_a_load_error(
    checkpoints: Path, tmp_path: Path
) -> None:
    state = torch.load(checkpoints / "step-000000004.pt", weights_only=True)
    path = _rewritten(checkpoints, tmp_path, config={**state["config"], "d_model": 32})
    with pytest.raises(ModelLoadError, match="weights do not match config"):
        load_checkpoint(str(path))


def test_a_vocabulary_of_the_wrong_size_is_a_load_error(checkpoints: Path, tmp_path: Path) -> None:
    path = _rewritten(checkpoints, tmp_path, vocabulary=["a", "b"])
    with pytest.raises(ModelLoadError, match="'vocabulary' must list"):
        load_checkpoint(str(path))


def test_a_factory_is_called_with_the_uri_and_serves_its_model() -> None:
    served = load_factory(FACTORY, "anything")
    assert served.vocab_size == len(VOCABULARY) and served.source == "tests"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_colon", "expected 'module:function'"),
        ("no_such_module_here:build", "ModuleNotFoundError"),
        ("support.serving:no_such_function", "AttributeError"),
        ("os.path:basename", "returned str, expected bigmodel.serving.ServedModel"),
        ("support.serving:make_config", "failed: UsageError"),
    ],
)
def test_a_bad_factory_is_a_load_error(spec: str, message: str) -> None:
    with pytest.raises(ModelLoadError, match=message):
        load_factory(spec, "")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_asking_for_cuda_without_one_is_a_load_error() -> None:
    with pytest.raises(ModelLoadError, match="no CUDA device"):
        resolve_device("cuda")
    assert resolve_device("auto") == torch.device("cpu")


def test_bfloat16_places_the_weights_in_bfloat16() -> None:
    served = place(load_factory(FACTORY, ""), torch.device("cpu"), "bfloat16")
    assert {p.dtype for p in served.module.parameters()} == {torch.bfloat16}
    assert not served.module.training
