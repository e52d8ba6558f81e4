"""What the service controller needs to know about its children, read from their bodies
(pure): each replica pod, and the Deployment and Service it applied."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bigmodel.api import PodPhase
from bigmodel.controller import podstatus
from bigmodel.manifests.service import SERVER_CONTAINER, SPEC_HASH, TEMPLATE_HASH
from bigmodel.telemetry.collect import Target, pod_url


@dataclass(frozen=True)
class ReplicaPod:
    """One replica pod as observed: enough to decide, small enough to keep in the index."""

    name: str
    uid: str
    phase: str
    template: str
    """The pod template hash it was created from."""
    ready: bool = False
    deleting: bool = False
    ip: str | None = None
    restarts: int = 0
    exit_code: int | None = None
    """Exit code of the server's latest termination (current or last state)."""
    message: str = ""
    """Its termination message (the server's one-line reason, or the log's tail)."""
    waiting: str | None = None
    """Why the server container waits (CrashLoopBackOff, ImagePullBackOff, ...)."""
    unschedulable: str | None = None
    """The scheduler's message while the pod cannot be placed."""
    machine: str | None = None
    """spec.nodeName: the Kubernetes node the pod was scheduled to."""
    created: datetime | None = None
    """metadata.creationTimestamp."""

    @property
    def crashed(self) -> bool:
        """Not ready, and its server exited with an error at least once."""
        return not self.ready and self.exit_code not in (None, 0)


def _server_status(status: Mapping[str, Any]) -> Mapping[str, Any]:
    containers = status.get("containerStatuses") or ()
    return next((c for c in containers if c.get("name") == SERVER_CONTAINER), {})


def observe_replica(body: Mapping[str, Any]) -> ReplicaPod:
    """The replica of a pod body."""
    meta, status = body.get("metadata") or {}, body.get("status") or {}
    server = _server_status(status)
    state = server.get("state") or {}
    terminated = state.get("terminated") or (server.get("lastState") or {}).get("terminated")
    return ReplicaPod(
        name=meta.get("name", ""),
        uid=meta.get("uid", ""),
        phase=status.get("phase") or PodPhase.PENDING,
        template=(meta.get("annotations") or {}).get(TEMPLATE_HASH, ""),
        ready=bool(server.get("ready")),
        deleting=bool(meta.get("deletionTimestamp")),
        ip=status.get("podIP") or None,
        restarts=int(server.get("restartCount") or 0),
        exit_code=None if not terminated else terminated.get("exitCode"),
        message=str((terminated or {}).get("message") or "").strip(),
        waiting=podstatus.waiting_reason(server),
        unschedulable=podstatus.unschedulable(status),
        machine=(body.get("spec") or {}).get("nodeName") or None,
        created=podstatus.timestamp(meta.get("creationTimestamp")),
    )


@dataclass(frozen=True)
class ChildView:
    """A Deployment or Service the controller applied, as last observed."""

    kind: str
    name: str
    spec_hash: str
    """The hash of the manifest it was applied from (`bigmodel.dev/spec-hash`)."""
    replicas: int = 0
    """Deployment: spec.replicas."""
    generation: int = 0
    observed_generation: int = 0
    status_replicas: int = 0
    updated_replicas: int = 0
    ready_replicas: int = 0
    stalled: str | None = None
    """Deployment: the message of a ProgressDeadlineExceeded condition."""

    @property
    def settled(self) -> bool:
        """The Deployment controller has seen its latest spec."""
        return self.observed_generation >= self.generation


def _stalled(status: Mapping[str, Any]) -> str | None:
    for condition in status.get("conditions") or ():
        if condition.get("type") == "Progressing" and condition.get("status") == "False":
            return str(condition.get("message") or condition.get("reason") or "no progress")
    return None


def observe_child(body: Mapping[str, Any]) -> ChildView:
    """The view of a Deployment or Service body."""
    meta, spec, status = (body.get(k) or {} for k in ("metadata", "spec", "status"))
    return ChildView(
        kind=str(body.get("kind", "")),
        name=str(meta.get("name", "")),
        spec_hash=(meta.get("annotations") or {}).get(SPEC_HASH, ""),
        replicas=int(spec.get("replicas") or 0),
        generation=int(meta.get("generation") or 0),
        observed_generation=int(status.get("observedGeneration") or 0),
        status_replicas=int(status.get("replicas") or 0),
        updated_replicas=int(status.get("updatedReplicas") or 0),
        ready_replicas=int(status.get("readyReplicas") or 0),
        stalled=_stalled(status),
    )


def replica_targets(pods: Sequence[ReplicaPod], port: int) -> list[Target]:
    """One target per running replica with an address (ready or still loading)."""
    live = [p for p in pods if p.phase == PodPhase.RUNNING and not p.deleting and p.ip]
    return [Target(p.name, p.name, pod_url(p.ip or "", port)) for p in sorted(live, key=_name)]


def _name(pod: ReplicaPod) -> str:
    return pod.name
