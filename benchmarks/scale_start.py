"""Start latency for `scale.py`: the example trainer (2 nodes x 2 processes, CPU) from
creating its BigModelJob to rank 0's first logged step, against the same torchrun command
started by hand on this host. Trials alternate; each returns seconds."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from kubesandbox.logs import container_log_path
from kubesandbox.testing import RunningSandbox, free_port, start_sandbox
from scale_support import BIN, NAMESPACE, Client, job_body, operator

TRAINER_ARGS = ["--steps", "5", "--batch-size", "8", "--log-every", "1"]
FIRST_STEP = '{"msg": "step"'
TIMEOUT = 300.0


def hand_run(log_dir: Path) -> float:
    """Two torchrun agents as the node pods run them (static rendezvous on node 0)."""
    master = str(free_port())
    start = time.monotonic()
    agents, logs = [], []
    for rank in range(2):
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "BIGMODEL_METRICS_HOST": "127.0.0.1",
            "BIGMODEL_METRICS_PORT": str(free_port()),
        }
        command = [str(BIN / "torchrun"), "--nnodes=2", "--nproc-per-node=2",
                   f"--node-rank={rank}", "--master-addr=127.0.0.1", f"--master-port={master}",
                   "-m", "bigmodel.runtime.example_trainer", *TRAINER_ARGS]  # fmt: skip
        logs.append(log_dir / f"hand-{rank}-{start:.0f}.log")
        with logs[-1].open("wb") as out:
            agents.append(subprocess.Popen(command, env=env, stdout=out, stderr=out))
    seconds = _first_step(logs[0], start)
    for agent in agents:
        if agent.wait(timeout=TIMEOUT) != 0:
            raise RuntimeError(f"torchrun by hand failed: {logs[0].read_text()[-2000:]}")
    return seconds


def _first_step(log: Path, start: float) -> float:
    """Seconds from `start` until `log` holds rank 0's first step line."""
    while time.monotonic() - start < TIMEOUT:
        if log.exists() and FIRST_STEP in log.read_text(errors="replace"):
            return time.monotonic() - start
        time.sleep(0.02)
    raise RuntimeError(f"no step logged in {log} after {TIMEOUT:g} s")


def trainer_spec(repo: Path) -> dict[str, Any]:
    """examples/cpu-job.yaml's spec with a short run that logs every step."""
    documents = yaml.safe_load_all((repo / "examples" / "cpu-job.yaml").read_text())
    [example] = [d for d in documents if d and d["kind"] == "BigModelJob"]
    spec: dict[str, Any] = {**example["spec"], "args": TRAINER_ARGS}
    return spec


async def _through_operator(sandbox: RunningSandbox, name: str, spec: dict[str, Any]) -> float:
    client = Client(sandbox, 1)
    try:
        log = container_log_path(sandbox.state_dir, NAMESPACE, f"{name}-node-0", "main")
        start = time.monotonic()
        await client.create(job_body(name, spec))
        seconds = await asyncio.to_thread(_first_step, log, start)
        path = f"/apis/bigmodel.dev/v1alpha1/namespaces/{NAMESPACE}/bigmodeljobs/{name}"
        while time.monotonic() - start < TIMEOUT:
            phase = ((await client.request("GET", path)).get("status") or {}).get("phase")
            if phase in ("Succeeded", "Failed"):
                if phase == "Failed":
                    raise RuntimeError(f"{name} failed; logs under {sandbox.state_dir}")
                break
            await asyncio.sleep(0.5)
        await client.request("DELETE", path)
        return seconds
    finally:
        await client.close()


def start_trials(trials: int, state: Path, repo: Path) -> dict[str, list[float]]:
    """`trials` of each, alternating, the operator already running (not counted)."""
    state.mkdir(parents=True, exist_ok=True)
    out: dict[str, list[float]] = {"hand": [], "operator": []}
    spec = trainer_spec(repo)
    with start_sandbox(state / "sandbox") as sandbox:
        sandbox.kubectl("apply", "-f", str(repo / "crds"))
        sandbox.kubectl("create", "namespace", NAMESPACE)
        with operator(sandbox, state / "operator.log"):
            hand_run(state)  # untimed: the first run of torch on this host reads it from disk
            for trial in range(trials):
                out["hand"].append(hand_run(state))
                seconds = asyncio.run(_through_operator(sandbox, f"start-{trial}", spec))
                out["operator"].append(seconds)
    return out
