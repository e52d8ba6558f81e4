"""`make demo`: the CPU example end to end on this machine.

Starts a sandbox and the operator (`bigmodel run`, the image's entry point), applies the CRDs
and `examples/cpu-job.yaml` (2 nodes x 2 processes), shows the job's progress until it ends,
and exits 0 when it succeeded with a falling loss, non-zero with the reason otherwise.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kubesandbox.testing import (
    RunningSandbox,
    answers_health,
    free_port,
    start_sandbox,
    stop_process,
)

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
JOB = "cpu-demo"
TIMEOUT_SECONDS = 600


class DemoError(Exception):
    """Why the demo did not succeed."""


@contextlib.contextmanager
def _process(command: list[str], log: Path, env: dict[str, str] | None = None) -> Iterator[None]:
    """Run `command` with output to `log` until the block ends (SIGINT, then kill)."""
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        yield
    finally:
        stop_process(proc, timeout=20)


def _wait(what: str, check: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise DemoError(f"{what} did not happen within {timeout:g}s")
        time.sleep(0.5)


class Demo:
    """The demo's steps against one sandbox."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.sandbox: RunningSandbox | None = None

    def kubectl(self, *args: str, check: bool = True) -> str:
        assert self.sandbox is not None, "the sandbox is not running"
        done = self.sandbox.kubectl(*args, check=False)
        if check and done.returncode != 0:
            raise DemoError(f"kubectl {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def status(self) -> dict[str, Any]:
        job = json.loads(self.kubectl("get", "bmj", JOB, "-o", "json"))
        return dict(job.get("status") or {})

    def losses(self) -> list[tuple[int, float]]:
        """(step, loss) from node 0's log (global rank 0 logs them)."""
        out = self.kubectl("logs", f"{JOB}-node-0", check=False)
        records = [json.loads(line) for line in out.splitlines() if line.startswith('{"msg"')]
        return [(r["step"], r["loss"]) for r in records if r.get("msg") == "step"]

    def follow(self) -> dict[str, Any]:
        """Print each change of phase, nodes, restarts, step and loss until the job ends."""
        deadline, last = time.monotonic() + TIMEOUT_SECONDS, ""
        while time.monotonic() < deadline:
            status, losses = self.status(), self.losses()
            nodes = status.get("nodes") or {}
            step = f"step {losses[-1][0]:>3} loss {losses[-1][1]:.4f}" if losses else "starting"
            telemetry = status.get("telemetry") or {}
            if "totalTaskSeconds" in telemetry:
                t, q = telemetry["totalTaskSeconds"], telemetry["serviceQuality"]
                step += f"  T {t:.3f}s S {q:.1f}/s"
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

    def run(self) -> None:
        print(f"starting the sandbox (state in {self.state})", flush=True)
        with start_sandbox(self.state) as sandbox:
            self.sandbox = sandbox
            self.kubectl("apply", "-f", str(REPO / "crds"))
            health, metrics = free_port(), free_port()
            operator = [str(BIN / "bigmodel"), "run", "--health-port", str(health)]
            operator += ["--metrics-port", str(metrics)]
            print("starting the operator: bigmodel run", flush=True)
            # Collect T_i every second: the demo job trains for only about ten seconds.
            env = sandbox.env() | {"BIGMODEL_TELEMETRY_INTERVAL": "1"}
            with _process(operator, self.state / "operator.log", env):
                _wait("the operator's /healthz", lambda: answers_health(health), 60)
                self.kubectl("apply", "-f", str(REPO / "examples" / "cpu-job.yaml"))
                print(f"applied examples/cpu-job.yaml: {JOB}, 2 nodes x 2 processes", flush=True)
                status = self.follow()
                self.report(status, metrics)

    def report(self, status: dict[str, Any], metrics_port: int) -> None:
        """Explain where to look, then raise unless the job succeeded with a falling loss."""
        print(self.kubectl("describe", "bmj", JOB).split("Events:")[-1].rstrip(), flush=True)
        losses = self.losses()
        print(
            f"\nlogs:     node pods {self.state}/logs/default/{JOB}-node-*/main.log,"
            f" operator {self.state}/operator.log, sandbox {self.state}/sandbox.log"
            f"\nmetrics:  while the job runs, each node pod serves /metrics on its IP at"
            f" port 9400 (kubectl get pods -o wide); the operator on :{metrics_port}/metrics",
            flush=True,
        )
        if status.get("phase") != "Succeeded":
            conditions = status.get("conditions", [])
            failed: dict[str, Any] = next((c for c in conditions if c["type"] == "Failed"), {})
            raise DemoError(f"{JOB} failed: {failed.get('reason')}: {failed.get('message')}")
        if len(losses) < 2 or losses[-1][1] >= losses[0][1]:
            raise DemoError(f"the loss did not fall: {losses}")
        print(f"\n{JOB} Succeeded: loss {losses[0][1]:.4f} -> {losses[-1][1]:.4f}", flush=True)


def main() -> int:
    """Run the demo; 0 on success, 1 with the reason otherwise."""
    state = Path(tempfile.mkdtemp(prefix="bigmodel-demo-"))
    try:
        Demo(state).run()
    except DemoError as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
