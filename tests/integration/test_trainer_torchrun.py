"""The example trainer under a real 2-node x 2-process torchrun on CPU (gloo), on one host."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bigmodel.runtime.exposition import LOCAL_RANK_STEP_SECONDS, NODE_STEP_SECONDS, STEPS_TOTAL
from kubesandbox.testing import free_port

pytestmark = pytest.mark.integration

SOURCE_ROOT = Path(__file__).resolve().parents[2] / "operator"
SLOWDOWN_SECONDS = 0.4


@contextmanager
def _torchrun(
    args: list[str], tmp_path: Path, extra_env: Mapping[str, str] = {}
) -> Iterator[tuple[list[subprocess.Popen[str]], list[int]]]:
    """Start two torchrun agents (node ranks 0 and 1) on one host; yield them and their ports."""
    endpoint = f"127.0.0.1:{free_port()}"
    ports = [free_port(), free_port()]
    agents = []
    for node_rank, port in enumerate(ports):
        env = {
            **os.environ,
            **extra_env,
            "PYTHONPATH": str(SOURCE_ROOT),
            "PYTHONUNBUFFERED": "1",
            "PYTHONWARNINGS": "ignore",
            "BIGMODEL_METRICS_HOST": "127.0.0.1",
            "BIGMODEL_METRICS_PORT": str(port),
            "BIGMODEL_STATS_DIR": str(tmp_path),
        }
        command = [
            sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc-per-node=2",
            f"--node-rank={node_rank}", "--rdzv-backend=c10d", f"--rdzv-endpoint={endpoint}",
            "-m", "bigmodel.runtime.example_trainer", *args,
        ]  # fmt: skip
        agents.append(
            subprocess.Popen(
                command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
        )
    try:
        yield agents, ports
    finally:
        for agent in agents:
            agent.kill()
            agent.wait()


def _finish(agents: list[subprocess.Popen[str]]) -> list[dict[str, Any]]:
    """Wait for both agents to succeed; return the trainer's JSON log lines."""
    lines = []
    for agent in agents:
        output, _ = agent.communicate(timeout=180)
        assert agent.returncode == 0, output
        lines += [json.loads(line) for line in output.splitlines() if line.startswith('{"msg"')]
    return lines


def _scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
    """The samples of a node's /metrics, None while it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return None
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _scrape_after_steps(
    agent: subprocess.Popen[str], port: int, steps: int, deadline: float
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Poll a node's /metrics until it has counted `steps` steps."""
    while time.monotonic() < deadline:
        assert agent.poll() is None, agent.communicate()[0]
        samples = _scrape(port)
        if samples and samples.get((STEPS_TOTAL, ()), 0) >= steps:
            return samples
        time.sleep(0.2)
    raise AssertionError(f"/metrics on port {port} did not reach {steps} steps in time")


def test_trains_checkpoints_serves_metrics_and_resumes(tmp_path: Path) -> None:
    checkpoints = tmp_path / "checkpoints"
    args = ["--steps", "30", "--checkpoint-dir", str(checkpoints), "--checkpoint-every", "10"]
    straggler = {
        "BIGMODEL_SLOWDOWN_SECONDS": str(SLOWDOWN_SECONDS),
        "BIGMODEL_SLOWDOWN_NODE_RANK": "1",
    }
    with _torchrun(args, tmp_path, straggler) as (agents, ports):
        deadline = time.monotonic() + 120
        node0, node1 = (
            _scrape_after_steps(agent, port, 5, deadline)
            for agent, port in zip(agents, ports, strict=True)
        )
        logs = _finish(agents)

    for samples in (node0, node1):
        assert {labels for name, labels in samples if name == LOCAL_RANK_STEP_SECONDS} == {
            (("local_rank", "0"),),
            (("local_rank", "1"),),
        }
    # The sleep is inside node 1's timed steps; node 0's steps end before it waits for node 1,
    # so node 0 is the faster (compared with each other, not with a clock: a loaded machine
    # stretches both nodes' compute).
    assert node1[(NODE_STEP_SECONDS, ())] >= SLOWDOWN_SECONDS
    assert node0[(NODE_STEP_SECONDS, ())] < node1[(NODE_STEP_SECONDS, ())]
    losses = [line["loss"] for line in logs if line["msg"] == "step"]
    assert losses[-1] < losses[0]
    assert (checkpoints / "step-000000030.pt").exists()

    with _torchrun(["--steps", "40", "--checkpoint-dir", str(checkpoints)], tmp_path) as (
        agents,
        _,
    ):
        logs = _finish(agents)
    assert any(line["msg"] == "resumed from step 30" for line in logs)
    assert [line["step"] for line in logs if line["msg"] == "step"] == [40]
    assert (checkpoints / "step-000000040.pt").exists()
