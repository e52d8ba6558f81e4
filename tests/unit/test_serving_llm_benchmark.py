"""benchmarks/llm_serving.py's GPU path, checked on the CPU: its flags parse, and the raw
`generate` limit runs in float32 and bfloat16 (the servers take the same `--dtype`)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from support.llm import tiny_lm_dir

pytest.importorskip("transformers", reason="needs the llm extra: pip install -e '.[llm]'")

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "llm_serving.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("llm_serving", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["llm_serving"] = module
    spec.loader.exec_module(module)
    return module


def test_the_gpu_flags_parse(bench: ModuleType) -> None:
    args = bench.parse_args(["--device", "cuda", "--dtype", "bfloat16", "--hidden-size", "2048"])
    assert (args.device, args.dtype, args.hidden_size) == ("cuda", "bfloat16", 2048)
    assert bench.parse_args([]).device == "cpu"


def test_an_unknown_dtype_is_refused_naming_the_choices(
    bench: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        bench.parse_args(["--dtype", "float16"])
    assert "bfloat16" in capsys.readouterr().err


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_the_raw_generate_limit_runs_in_each_dtype(bench: ModuleType, dtype: str) -> None:
    args = bench.parse_args(["--dtype", dtype, "--tokens", "4", "--rounds", "1"])
    figures = bench.raw_generate(tiny_lm_dir(), 2, args)
    assert 0 < figures["tokens"] <= 2 * 4
    assert figures["tokens_per_s"] > 0
