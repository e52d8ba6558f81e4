"""Model loading: the example trainer's checkpoints, a `module:function` factory, the device.

Every failure is a `ModelLoadError` whose message is one readable line: the server writes
it to the termination message file, and the operator quotes it in the service's status.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import torch

from bigmodel.runtime.example_trainer import latest_checkpoint
from bigmodel.runtime.model import TinyLMConfig
from bigmodel.serving.model import CharTokenizer, ServedModel

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


class ModelLoadError(Exception):
    """The model cannot be served; the message says why in one line."""


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")


def resolve_checkpoint(uri: str) -> Path:
    """The checkpoint file a URI names: a file, or the latest `step-*.pt` of a directory."""
    path_text = uri.removeprefix("file://")
    if "://" in path_text:
        scheme = path_text.split("://", 1)[0]
        raise ModelLoadError(
            f"--model-uri {uri!r}: scheme {scheme!r} is not supported; give a checkpoint file "
            "or directory path (e.g. a mounted volume), or serve it with --model-factory"
        )
    path = Path(path_text)
    if path.is_dir():
        latest = latest_checkpoint(path)
        if latest is None:
            raise ModelLoadError(f"--model-uri {uri!r}: no step-*.pt checkpoint in the directory")
        return latest
    if not path.is_file():
        raise ModelLoadError(f"--model-uri {uri!r}: no such file or directory")
    return path


def load_checkpoint(uri: str) -> ServedModel:
    """A TinyLM rebuilt from an example trainer checkpoint (config, vocabulary, weights)."""
    path = resolve_checkpoint(uri)
    try:
        state: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ModelLoadError(f"{path}: not a loadable checkpoint ({_first_line(error)})") from None
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict):
        raise ModelLoadError(f"{path}: not an example trainer checkpoint (no 'model' weights)")
    if not isinstance(state.get("config"), dict):
        raise ModelLoadError(
            f"{path}: the checkpoint has no model 'config' (written by an older trainer?); "
            "re-train, or serve it with --model-factory"
        )
    try:
        config = TinyLMConfig.from_dict(state["config"])
    except ValueError as error:
        raise ModelLoadError(f"{path}: {error}") from None
    vocabulary = state.get("vocabulary")
    if (
        not isinstance(vocabulary, list)
        or len(vocabulary) != config.vocab
        or not all(isinstance(char, str) and len(char) == 1 for char in vocabulary)
    ):
        raise ModelLoadError(
            f"{path}: 'vocabulary' must list the {config.vocab} characters of config.vocab"
        )
    module = config.build()
    try:
        module.load_state_dict(state["model"])
    except RuntimeError as error:
        raise ModelLoadError(
            f"{path}: weights do not match config ({_first_line(error)})"
        ) from None
    tokenizer = CharTokenizer(vocabulary)
    return ServedModel(module, config.vocab, config.seq_len, tokenizer, source=str(path))


def load_factory(spec: str, uri: str) -> ServedModel:
    """Call `module:function` with the model URI; it must return a `ServedModel`."""
    module_name, _, function_name = spec.partition(":")
    if not module_name or not function_name:
        raise ModelLoadError(f"--model-factory {spec!r}: expected 'module:function'")
    try:
        factory = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as error:
        raise ModelLoadError(f"--model-factory {spec!r}: {_first_line(error)}") from None
    try:
        served = factory(uri)
    except Exception as error:
        raise ModelLoadError(f"--model-factory {spec!r} failed: {_first_line(error)}") from None
    if not isinstance(served, ServedModel):
        raise ModelLoadError(
            f"--model-factory {spec!r} returned {type(served).__name__}, "
            "expected bigmodel.serving.ServedModel"
        )
    return served


def resolve_device(name: str) -> torch.device:
    """`cpu`, `cuda` or `auto` (CUDA when available); CUDA asked but absent is a load error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError("--device cuda: no CUDA device is available")
    return torch.device(name)


def place(served: ServedModel, device: torch.device, dtype: str) -> ServedModel:
    """Move the module to the device and dtype, in inference mode (eval, no gradients)."""
    try:
        served.module.to(device=device, dtype=DTYPES[dtype]).eval().requires_grad_(False)
    except Exception as error:
        raise ModelLoadError(
            f"cannot move the model to {device}/{dtype}: {_first_line(error)}"
        ) from None
    return served
