"""What both parts of the demo use: kubectl against its sandbox, polling, its error."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubesandbox.testing import RunningSandbox

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples"


class DemoError(Exception):
    """Why the demo did not succeed."""


def wait(what: str, check: Callable[[], Any], timeout: float, pause: float = 0.5) -> Any:
    """`check()`'s first true value, polled every `pause` seconds; DemoError after `timeout`."""
    deadline = time.monotonic() + timeout
    while not (found := check()):
        if time.monotonic() > deadline:
            raise DemoError(f"{what} did not happen within {timeout:g}s")
        time.sleep(pause)
    return found


def task_times(status: dict[str, Any]) -> str:
    """`  T 412ms S 4.87/s` as `kubectl get` shows them (empty before the first round)."""
    shown = (status.get("telemetry") or {}).get("readable") or {}
    return f"  T {shown['total']} S {shown['quality']}" if shown else ""


class Kubectl:
    """kubectl against the demo's sandbox, in its default namespace."""

    def __init__(self, sandbox: RunningSandbox) -> None:
        self.sandbox = sandbox

    def __call__(self, *args: str, check: bool = True, input: str | None = None) -> str:
        done = self.sandbox.kubectl(*args, check=False, input=input)
        if check and done.returncode != 0:
            raise DemoError(f"kubectl {' '.join(args)}: {done.stderr.strip()}")
        return str(done.stdout)

    def status(self, kind: str, name: str) -> dict[str, Any]:
        """`status` of a resource (empty until it has one)."""
        got = json.loads(self("get", kind, name, "-o", "json"))
        return dict(got.get("status") or {})

    def events(self, kind: str, name: str) -> str:
        """The Events section of `kubectl describe`."""
        return self("describe", kind, name).split("Events:")[-1].rstrip()
