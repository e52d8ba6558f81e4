"""benchmarks/scale.py at a small size, so that it keeps working: it runs every scenario and
prints its ratios (their values are for benchmarks/README.md, never asserted here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "scale.py"


def _run(tmp_path: Path, *args: str) -> dict[str, Any]:
    command = [sys.executable, str(SCRIPT), "--state-dir", str(tmp_path), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return results


def test_the_burst_and_steady_state_scenarios_print_their_ratios(tmp_path: Path) -> None:
    results = _run(tmp_path, "--jobs", "3", "--scenarios", "burst,steady", "--window", "2",
                   "--idle-window", "1", "--settle", "1")  # fmt: skip
    assert results["burst_ratio"] > 0 and results["sandbox_rate_ratio"] > 0
    operator = results["rounds"][-1]["operator"]
    assert operator["steady"]["rss_mb"] > 0
    assert operator["steady"]["cpu_share"] >= 0


def test_a_baseline_operators_burst_runs_in_the_same_rounds(tmp_path: Path) -> None:
    operator_dir = SCRIPT.parents[1] / "operator"
    results = _run(tmp_path, "--jobs", "2", "--scenarios", "burst", "--rounds", "2",
                   "--idle-window", "1", "--baseline-operator", str(operator_dir))  # fmt: skip
    assert all(r["baseline"]["all_running_seconds"] > 0 for r in results["rounds"])
    assert results["baseline_burst_ratio"] > 0 and results["burst_ratio"] > 0


# Four real 2 x 2 torchrun runs (a warm-up, one by hand, one through a fresh operator): over a
# minute, so `make test-scenarios` runs it. `make test` covers its path, a job from `apply` to
# training, with the CPU example (test_chart_install.py).
@pytest.mark.scenarios
def test_the_start_latency_scenario_prints_its_ratio(tmp_path: Path) -> None:
    results = _run(tmp_path, "--scenarios", "start", "--trials", "1")
    assert len(results["start"]["hand"]) == len(results["start"]["operator"]) == 1
    assert results["start_ratio"] > 0
