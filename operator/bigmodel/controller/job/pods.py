"""What the controller needs to know about one pod of a job, read from its body (pure): its
member (role and index within the role), phase, exit code and what holds it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bigmodel.api import PodPhase
from bigmodel.controller import podstatus
from bigmodel.manifests.frameworks import Member
from bigmodel.manifests.job import GENERATION_ANNOTATION, LABEL_RANK, LABEL_ROLE, MAIN_CONTAINER

# Pod status reasons of a pod stopped by the cluster rather than by its program.
_DISRUPTED_REASONS = ("Evicted", "NodeLost", "Shutdown", "NodeShutdown", "Terminated")


@dataclass(frozen=True)
class NodePod:
    """One pod of a job as observed: enough to decide, small enough to keep in the cache."""

    name: str
    uid: str
    member: Member
    """Its role and index within the role (for pytorch, the node rank)."""
    phase: str
    leaving: bool = False
    """Its deletion was requested (a deletionTimestamp) and the cache still has it."""
    exit_code: int | None = None
    disruption: str | None = None
    """Why the cluster stopped the pod (eviction, preemption, node lost), or None."""
    generation: int = 1
    """metadata.generation of the job the pod was built from."""
    ip: str | None = None
    """status.podIP: where telemetry scrapes the pod's metrics port."""
    unschedulable: str | None = None
    """The scheduler's message while the pod cannot be placed on a node."""
    start_failure: str | None = None
    """`<waiting reason>: <message>` while the kubelet cannot start a container."""
    machine: str | None = None
    """spec.nodeName: the Kubernetes node the pod was scheduled to."""
    created: datetime | None = None
    """metadata.creationTimestamp."""

    @property
    def active(self) -> bool:
        """Pending or Running, and not leaving."""
        return not self.leaving and self.phase in (PodPhase.PENDING, PodPhase.RUNNING)

    @property
    def failed(self) -> bool:
        """Ended without success, or stopped by the cluster."""
        return not self.leaving and (
            self.phase in (PodPhase.FAILED, PodPhase.UNKNOWN) or self.disruption is not None
        )


def _exit_code(status: Mapping[str, Any]) -> int | None:
    """Exit code of the main container (or the first that terminated)."""
    statuses = sorted(
        status.get("containerStatuses") or (), key=lambda c: c.get("name") != MAIN_CONTAINER
    )
    for container in statuses:
        terminated = (container.get("state") or {}).get("terminated")
        if terminated and terminated.get("exitCode") is not None:
            return int(terminated["exitCode"])
    return None


def _disruption(status: Mapping[str, Any]) -> str | None:
    """The cluster's reason for stopping the pod: a DisruptionTarget condition, an eviction
    or a lost node."""
    for condition in status.get("conditions") or ():
        if condition.get("type") == "DisruptionTarget" and condition.get("status") == "True":
            return str(condition.get("reason") or "DisruptionTarget")
    if status.get("reason") in _DISRUPTED_REASONS:
        return str(status["reason"])
    if status.get("phase") == PodPhase.UNKNOWN:
        return "NodeLost"
    return None


def observe_pod(body: Mapping[str, Any]) -> NodePod | None:
    """The job pod of a pod body, or None when it carries no role or no valid index label."""
    meta = body.get("metadata") or {}
    labels = meta.get("labels") or {}
    rank, role = labels.get(LABEL_RANK, ""), labels.get(LABEL_ROLE, "")
    if not rank.isdigit() or not role:
        return None
    generation = (meta.get("annotations") or {}).get(GENERATION_ANNOTATION, "1")
    status = body.get("status") or {}
    return NodePod(
        name=meta.get("name", ""),
        uid=meta.get("uid", ""),
        member=Member(role, int(rank)),
        phase=status.get("phase") or PodPhase.PENDING,
        leaving=bool(meta.get("deletionTimestamp")),
        exit_code=_exit_code(status),
        disruption=_disruption(status),
        generation=int(generation) if generation.isdigit() else 1,
        ip=status.get("podIP") or None,
        unschedulable=podstatus.unschedulable(status),
        start_failure=podstatus.start_failure(status),
        machine=(body.get("spec") or {}).get("nodeName") or None,
        created=podstatus.timestamp(meta.get("creationTimestamp")),
    )
