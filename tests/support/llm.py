"""A tiny Hugging Face-format causal LM for the tests, built once per test process.

`build_tiny_lm` trains its tokenizer and writes random weights offline; the directory is
shared (read-only) by every test that serves or loads it.
"""

from __future__ import annotations

import dataclasses
import functools
import tempfile
from pathlib import Path
from typing import Any

from bigmodel.serving.config import ServerConfig, parse_config
from bigmodel.serving.tiny_lm import build_tiny_lm

LLM = "tiny-chat"


@functools.cache
def tiny_lm_dir() -> Path:
    """The tiny model's directory (config.json, model.safetensors, tokenizer files)."""
    return build_tiny_lm(Path(tempfile.mkdtemp(prefix="tiny-lm-")) / "model")


def llm_config(*flags: str, **overrides: Any) -> ServerConfig:
    """The server's configuration for the tiny Hugging Face model, on the CPU."""
    argv = ["--model-name", LLM, "--model-uri", str(tiny_lm_dir()), "--device", "cpu"]
    argv += ["--termination-message-path", "", *flags]
    return dataclasses.replace(parse_config(argv, {}), **overrides)
