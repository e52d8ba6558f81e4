"""The demo's second part: serve the model the job just trained (`examples/cpu-service.yaml`,
its checkpoints on the job's claim), ask it for a completion, load it until the operator
scales it up, stop, and watch it scale back down; T and S as they change."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from bigmodel.demo.kubectl import EXAMPLES, DemoError, Kubectl, task_times
from bigmodel.demo.load import Load, completion

SERVICE = "cpu-chat"
SCALE_DOWN_SECONDS = 10
"""The demo's down-window (the example's is a minute): the load stops, 10 s later it scales."""
CLIENTS = 12
QUIET_SECONDS = 3.0
"""While nothing but the measurements changes, one line every this many seconds."""
PROMPT = "the cat "


def describe(status: dict[str, Any]) -> str:
    """`phase Ready  replicas 2 desired, 2 ready  in flight 3.5 (target 4)  T 412ms S 4.87/s`"""
    auto = status.get("autoscaling") or {}
    flight = auto.get("current")
    load = f"in flight {flight:.1f} per replica" if flight is not None else "in flight -"
    line = (
        f"phase {status.get('phase', '-'):<11} replicas {status.get('desiredReplicas', 0)}"
        f" desired, {status.get('readyReplicas', 0)} ready  {load} (target {auto.get('target')})"
    )
    return line + task_times(status)


def follow(
    kubectl: Kubectl, what: str, done: Callable[[dict[str, Any]], bool], timeout: float
) -> dict[str, Any]:
    """Print the service's state when its phase or replicas change, and every
    `QUIET_SECONDS` meanwhile, until `done(status)`; a Failed service or the timeout raise
    DemoError."""
    deadline, shown, printed = time.monotonic() + timeout, None, 0.0
    while time.monotonic() < deadline:
        status = kubectl.status("bms", SERVICE)
        state = (status.get("phase"), status.get("desiredReplicas"), status.get("readyReplicas"))
        if state != shown or time.monotonic() - printed >= QUIET_SECONDS:
            print(describe(status), flush=True)
            shown, printed = state, time.monotonic()
        if done(status):
            return status
        if status.get("phase") == "Failed":
            conditions: list[dict[str, Any]] = status.get("conditions") or []
            ready = next((c for c in conditions if c["type"] == "Ready"), {})
            raise DemoError(f"{SERVICE} failed: {ready.get('reason')}: {ready.get('message')}")
        time.sleep(0.5)
    raise DemoError(f"{SERVICE}: {what} did not happen within {timeout:g}s")


def scaled(up: bool) -> Callable[[dict[str, Any]], bool]:
    """Whether a status is Ready with more than one replica (`up`), or with exactly one."""

    def check(status: dict[str, Any]) -> bool:
        desired = status.get("desiredReplicas") or 0
        wanted = desired > 1 if up else desired == 1
        return wanted and status.get("phase") == "Ready" and status.get("readyReplicas") == desired

    return check


def serve(kubectl: Kubectl, state: Path) -> None:
    """Serve, ask, load, scale up, unload, scale down; raise DemoError when a step fails."""
    service = next(
        d for d in yaml_documents(EXAMPLES / "cpu-service.yaml") if d["kind"] == "BigModelService"
    )
    service["spec"]["autoscaling"]["scaleDownStabilizationSeconds"] = SCALE_DOWN_SECONDS
    kubectl("apply", "-f", "-", input=json.dumps(service))
    model = service["spec"]["model"]["name"]
    print(
        f"\napplied examples/cpu-service.yaml: {SERVICE} serves {model} from the job's checkpoints"
        f" (autoscaled on requests in flight; the demo scales down after {SCALE_DOWN_SECONDS}s)",
        flush=True,
    )
    follow(kubectl, "Ready", lambda s: s.get("phase") == "Ready", 300)
    front = json.loads(kubectl("get", "service", SERVICE, "-o", "json"))["spec"]
    address = f"http://{front['clusterIP']}:{front['ports'][0]['port']}"
    code, answer = completion(address, model, PROMPT, tokens=32)
    if code != 200:
        raise DemoError(f"a completion from {address} answered {code}: {answer}")
    print(f"\ncompletion of {PROMPT!r}: {answer['choices'][0]['text']!r} ({address})", flush=True)

    print(f"\nloading {SERVICE} with {CLIENTS} clients until it scales up", flush=True)
    with Load(address, model, CLIENTS, tokens=24).running() as load:
        status = follow(kubectl, "scaling up", scaled(up=True), 300)
    most = status["desiredReplicas"]
    if load.errors:
        raise DemoError(f"{len(load.errors)} requests failed under load: {load.errors[:3]}")
    print(f"the load stopped after {load.codes[200]} completions, none failed", flush=True)
    follow(kubectl, "scaling back down to 1 replica", scaled(up=False), 300)
    print(kubectl.events("bms", SERVICE), flush=True)
    print(
        f"\nlogs:     replicas {state}/logs/default/{SERVICE}-*/server.log"
        f"\n{SERVICE} Ready: served {load.codes[200] + 1} completions, scaled 1 -> {most} -> 1",
        flush=True,
    )


def yaml_documents(path: Path) -> list[dict[str, Any]]:
    """The objects of a YAML file."""
    return [d for d in yaml.safe_load_all(path.read_text()) if d]
