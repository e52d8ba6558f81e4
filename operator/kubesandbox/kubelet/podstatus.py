"""Container states, pod phase and conditions as a kubelet reports them (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from kubesandbox.objects import Obj

MAX_BACKOFF_SECONDS = 300.0


@dataclass
class ContainerRun:
    """What the kubelet knows of one container: its state and history."""

    name: str
    image: str
    state: Obj = field(default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    last_state: Obj = field(default_factory=dict)
    restarts: int = 0
    ready: bool = False
    started: bool = False  # running, and its startup probe (if any) has passed
    done: bool = False  # terminated for good: no restart follows

    @property
    def exit_code(self) -> int | None:
        """The exit code of a terminated container."""
        terminated = self.state.get("terminated")
        return None if terminated is None else int(terminated["exitCode"])

    def status(self, pod_uid: str) -> Obj:
        """The containerStatuses entry."""
        return {
            "name": self.name,
            "image": self.image,
            "imageID": "",
            "containerID": f"sandbox://{pod_uid}/{self.name}/{self.restarts}",
            "ready": self.ready,
            "started": self.started and "running" in self.state,
            "restartCount": self.restarts,
            "state": self.state,
            "lastState": self.last_state,
        }


def exit_code(returncode: int) -> int:
    """A process's return code as a container exit code (killed by signal N: 128 + N)."""
    return 128 - returncode if returncode < 0 else returncode


def terminated(code: int, started: str, finished: str, reason: str = "", message: str = "") -> Obj:
    """A terminated state: reason Completed for 0, else Error unless given."""
    state: Obj = {
        "exitCode": code,
        "reason": reason or ("Completed" if code == 0 else "Error"),
        "startedAt": started,
        "finishedAt": finished,
    }
    if message:
        state["message"] = message
    return {"terminated": state}


def should_restart(policy: str, code: int) -> bool:
    """Whether a container that exited with `code` runs again under the pod's restartPolicy."""
    return policy == "Always" or (policy == "OnFailure" and code != 0)


def backoff(restarts: int, base: float) -> float:
    """Seconds before restart number `restarts + 1`: doubling from `base`, at most 5 min."""
    return float(min(base * 2**restarts, MAX_BACKOFF_SECONDS))


def phase(init: Sequence[ContainerRun], main: Sequence[ContainerRun]) -> str:
    """Pending, Running, Succeeded or Failed."""
    if any(r.done and r.exit_code != 0 for r in init):
        return "Failed"
    if not all(r.done for r in init):
        return "Pending"
    if main and all(r.done for r in main):
        return "Succeeded" if all(r.exit_code == 0 for r in main) else "Failed"
    started = any("waiting" not in r.state or r.restarts for r in main)
    return "Running" if started else "Pending"


def _condition(kind: str, ok: bool, reason: str = "", message: str = "") -> Obj:
    condition: Obj = {"type": kind, "status": "True" if ok else "False"}
    if not ok and reason:
        condition["reason"] = reason
    if not ok and message:
        condition["message"] = message
    return condition


def conditions(
    old: Sequence[Obj], init: Sequence[ContainerRun], main: Sequence[ContainerRun], stamp: str
) -> list[Obj]:
    """PodReadyToStartContainers, Initialized, Ready, ContainersReady, PodScheduled; a
    condition keeps its lastTransitionTime while its status stays."""
    current = phase(init, main)
    completed = current in ("Succeeded", "Failed")
    unready = [r.name for r in main if not r.ready]
    pending_init = [r.name for r in init if not r.done or r.exit_code != 0]
    ready_reason = "PodCompleted" if completed else "ContainersNotReady"
    ready_message = "" if completed else f"containers with unready status: [{' '.join(unready)}]"
    init_reason = "PodCompleted" if completed else "ContainersNotInitialized"
    init_message = (
        "" if completed else f"containers with incomplete status: [{' '.join(pending_init)}]"
    )
    fresh = [
        _condition("PodReadyToStartContainers", not completed),
        _condition("Initialized", not pending_init, init_reason, init_message),
        _condition("Ready", not unready, ready_reason, ready_message),
        _condition("ContainersReady", not unready, ready_reason, ready_message),
        _condition("PodScheduled", True),
    ]
    before = {c["type"]: c for c in old}
    out = []
    for condition in fresh:
        previous = before.get(condition["type"])
        same = previous is not None and previous["status"] == condition["status"]
        stamped = previous["lastTransitionTime"] if same and previous else stamp
        out.append({**condition, "lastProbeTime": None, "lastTransitionTime": stamped})
    return out
