"""The demo's run: a sandbox, the operator (`bigmodel run`, the image's entry point), then the
job part, the service part and the chat part; exits 0 only when all worked."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from bigmodel.demo.chat import converse
from bigmodel.demo.job import train
from bigmodel.demo.kubectl import REPO, DemoError, Kubectl, wait
from bigmodel.demo.service import serve
from kubesandbox.testing import (
    answers_ok,
    free_port,
    start_sandbox,
    stop_process,
)

BIN = Path(sys.executable).parent


@contextlib.contextmanager
def _process(command: list[str], log: Path, env: dict[str, str] | None = None) -> Iterator[None]:
    """Run `command` with output to `log` until the block ends (SIGINT, then kill)."""
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        yield
    finally:
        stop_process(proc, timeout=20)


def run(state: Path) -> None:
    """The demo's parts against one sandbox and one operator."""
    print(f"starting the sandbox (state in {state})", flush=True)
    with start_sandbox(state) as sandbox:
        kubectl = Kubectl(sandbox)
        kubectl("apply", "-f", str(REPO / "crds"))
        health, metrics = free_port(), free_port()
        operator = [str(BIN / "bigmodel"), "run", "--health-port", str(health)]
        operator += ["--metrics-port", str(metrics)]
        print("starting the operator: bigmodel run", flush=True)
        # Collect T_i (and decide on scaling) every second: the demo's workloads are short.
        env = sandbox.env() | {"BIGMODEL_TELEMETRY_INTERVAL": "1"}
        with _process(operator, state / "operator.log", env):
            wait("the operator's /readyz", lambda: answers_ok(health, "/readyz"), 60)
            train(kubectl, state, metrics)
            serve(kubectl, state)
            converse(kubectl, state)


def main() -> int:
    """Run the demo; 0 on success, 1 with the reason otherwise."""
    state = Path(tempfile.mkdtemp(prefix="bigmodel-demo-"))
    try:
        run(state)
    except DemoError as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
    return 0
