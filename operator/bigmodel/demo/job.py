"""The demo's first part: train the CPU example (`examples/cpu-job.yaml`) under the operator
and show its progress, T and S until it succeeds with a falling loss."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from bigmodel.demo.kubectl import EXAMPLES, DemoError, Kubectl, task_times

JOB = "cpu-demo"
TIMEOUT_SECONDS = 600


def losses(kubectl: Kubectl) -> list[tuple[int, float]]:
    """(step, loss) from node 0's log (global rank 0 logs them)."""
    out = kubectl("logs", f"{JOB}-node-0", check=False)
    records = [json.loads(line) for line in out.splitlines() if line.startswith('{"msg"')]
    return [(r["step"], r["loss"]) for r in records if r.get("msg") == "step"]


def follow(kubectl: Kubectl) -> dict[str, Any]:
    """Print each change of phase, nodes, restarts, step and loss until the job ends."""
    deadline, last = time.monotonic() + TIMEOUT_SECONDS, ""
    while time.monotonic() < deadline:
        status, trained = kubectl.status("bmj", JOB), losses(kubectl)
        nodes = status.get("nodes") or {}
        step = f"step {trained[-1][0]:>3} loss {trained[-1][1]:.4f}" if trained else "starting"
        step += task_times(status)
        line = (
            f"phase {status.get('phase', '-'):<10} nodes running {nodes.get('running', 0)}"
            f" succeeded {nodes.get('succeeded', 0)} failed {nodes.get('failed', 0)}"
            f"  restarts {status.get('restarts', 0)}  {step}"
        )
        if line != last:
            print(line, flush=True)
            last = line
        if status.get("phase") in ("Succeeded", "Failed"):
            return status
        time.sleep(1)
    raise DemoError(f"{JOB} did not finish within {TIMEOUT_SECONDS}s")


def train(kubectl: Kubectl, state: Path, metrics_port: int) -> None:
    """Apply the example, follow it, explain where to look; raise unless it succeeded with a
    falling loss."""
    kubectl("apply", "-f", str(EXAMPLES / "cpu-job.yaml"))
    print(f"applied examples/cpu-job.yaml: {JOB}, 2 nodes x 2 processes", flush=True)
    status = follow(kubectl)
    print(f"\n$ kubectl get bmj {JOB}\n{kubectl('get', 'bmj', JOB).rstrip()}", flush=True)
    print(kubectl.events("bmj", JOB), flush=True)
    trained = losses(kubectl)
    print(
        f"\nlogs:     node pods {state}/logs/default/{JOB}-node-*/main.log,"
        f" operator {state}/operator.log, sandbox {state}/sandbox.log"
        f"\nmetrics:  while the job runs, each node pod serves /metrics on its IP at"
        f" port 9400 (kubectl get pods -o wide); the operator on :{metrics_port}/metrics",
        flush=True,
    )
    if status.get("phase") != "Succeeded":
        conditions = status.get("conditions", [])
        failed: dict[str, Any] = next((c for c in conditions if c["type"] == "Failed"), {})
        raise DemoError(f"{JOB} failed: {failed.get('reason')}: {failed.get('message')}")
    if len(trained) < 2 or trained[-1][1] >= trained[0][1]:
        raise DemoError(f"the loss did not fall: {trained}")
    print(f"\n{JOB} Succeeded: loss {trained[0][1]:.4f} -> {trained[-1][1]:.4f}", flush=True)
