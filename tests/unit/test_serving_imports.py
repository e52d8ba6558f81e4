"""The server image has torch, aiohttp and prometheus_client only: the server imports no more."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SOURCE_ROOT = Path(__file__).resolve().parents[2] / "operator"
FORBIDDEN = ("kopf", "kubernetes", "pydantic", "yaml", "jsonschema")
FORBIDDEN_OWN = ("bigmodel.api", "bigmodel.controller", "bigmodel.manifests", "kubesandbox")


def modules_the_server_loads() -> list[str]:
    """Every module loaded by importing the server, in a fresh interpreter."""
    code = (
        "import json, sys, bigmodel.serving.server, bigmodel.serving.app;"
        "print(json.dumps(sorted(sys.modules)))"
    )
    env = {**os.environ, "PYTHONPATH": str(SOURCE_ROOT), "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    loaded: list[str] = json.loads(result.stdout)
    return loaded


def test_the_server_imports_neither_the_operator_stack_nor_the_operator_itself() -> None:
    loaded = modules_the_server_loads()
    assert [m for m in loaded if m.split(".")[0] in FORBIDDEN] == []
    assert [m for m in loaded if m.startswith(FORBIDDEN_OWN)] == []


def test_the_server_imports_transformers_only_to_serve_a_hugging_face_model() -> None:
    lazy = ("transformers", "tokenizers", "safetensors", "huggingface_hub")
    assert [m for m in modules_the_server_loads() if m.split(".")[0] in lazy] == []
