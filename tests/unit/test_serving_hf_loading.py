"""Hugging Face models: a directory or hf://org/name from the local cache, safetensors only."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bigmodel.serving.hf_loading import is_hf_uri, load_hf, resolve_hf
from bigmodel.serving.loading import ModelLoadError
from support.llm import tiny_lm_dir

pytest.importorskip("transformers", reason="needs the llm extra: pip install -e '.[llm]'")


def cached_copy(cache: Path, repo: str, model: Path) -> Path:
    """`model` laid out as the Hugging Face cache keeps a downloaded snapshot."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo_dir = cache / f"models--{repo.replace('/', '--')}"
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text(commit)
    shutil.copytree(model, repo_dir / "snapshots" / commit)
    return repo_dir / "snapshots" / commit


def test_a_directory_with_a_config_or_an_hf_uri_is_a_hugging_face_model() -> None:
    assert is_hf_uri(str(tiny_lm_dir())) and is_hf_uri("hf://org/name")
    assert not is_hf_uri("/models/run-1/step-000000060.pt")


def test_a_directory_loads_with_its_tokenizer_context_and_end_token() -> None:
    served = load_hf(str(tiny_lm_dir()))
    config = json.loads((tiny_lm_dir() / "config.json").read_text())
    assert served.context_length == config["max_position_embeddings"]
    assert served.vocab_size == config["vocab_size"]
    assert served.eos_token_id == config["eos_token_id"]
    assert served.decoder is not None and served.tokenizer is not None


def test_an_hf_uri_resolves_through_the_local_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    snapshot = cached_copy(tmp_path, "acme/tiny", tiny_lm_dir())
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    assert resolve_hf("hf://acme/tiny") == snapshot
    assert load_hf("hf://acme/tiny").source == str(snapshot)


def test_an_hf_uri_missing_from_the_cache_names_the_cache_and_downloads_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(ModelLoadError, match=f"not in the local Hugging Face cache {tmp_path}"):
        resolve_hf("hf://acme/absent")


@pytest.mark.parametrize("uri", ["hf://just-a-name", "hf://a/b/c", "hf:///b"])
def test_a_malformed_hf_uri_says_the_expected_form(uri: str) -> None:
    with pytest.raises(ModelLoadError, match=r"expected hf://org/name\[@revision\]"):
        resolve_hf(uri)


def test_pickled_weights_are_refused(tmp_path: Path) -> None:
    model = shutil.copytree(tiny_lm_dir(), tmp_path / "model")
    (model / "model.safetensors").rename(model / "pytorch_model.bin")
    with pytest.raises(ModelLoadError, match=r"no \*\.safetensors weights"):
        load_hf(str(model))


def test_a_model_with_its_own_code_needs_trust_remote_code(tmp_path: Path) -> None:
    model = shutil.copytree(tiny_lm_dir(), tmp_path / "model")
    config = json.loads((model / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_custom.CustomLM"}
    config["model_type"] = "custom-lm"
    (model / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="transformers cannot load it"):
        load_hf(str(model))
