"""Why a pod does not run yet, read from its status (pure; shared by both kinds' pod views).

Two causes a user must act on, as the scheduler and the kubelet report them:
- unschedulable: condition `PodScheduled=False`, reason `Unschedulable`, with the
  scheduler's message (`0/2 nodes are available: 2 Insufficient nvidia.com/gpu.`);
- failing to start: a container waiting with a reason that does not go away by itself
  (an image that cannot be pulled, a configuration that cannot be built).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

START_FAILURES = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
    }
)
"""Waiting reasons of a container the kubelet cannot start (CrashLoopBackOff is not one: the
container started, and its exit is reported as such)."""

QUOTED_PODS = 3
"""Pods named per message; the rest are counted."""


def unschedulable(status: Mapping[str, Any]) -> str | None:
    """The scheduler's message while the pod cannot be placed on any node, else None."""
    for condition in status.get("conditions") or ():
        if (
            condition.get("type") == "PodScheduled"
            and condition.get("status") == "False"
            and condition.get("reason") == "Unschedulable"
        ):
            return str(condition.get("message") or "Unschedulable")
    return None


def waiting_reason(container: Mapping[str, Any]) -> str | None:
    """The reason a container (a containerStatuses entry) waits, or None."""
    reason = ((container.get("state") or {}).get("waiting") or {}).get("reason")
    return str(reason) if reason else None


def start_failure(status: Mapping[str, Any]) -> str | None:
    """`<reason>: <message>` of the first container (init containers first) that the kubelet
    cannot start, else None."""
    containers = [*status.get("initContainerStatuses", ()), *status.get("containerStatuses", ())]
    for container in containers:
        reason = waiting_reason(container)
        if reason in START_FAILURES:
            message = str(container["state"]["waiting"].get("message") or "").strip()
            return f"{reason}: {message}" if message else str(reason)
    return None


def quote_pods(named: Sequence[tuple[str, str]], limit: int = QUOTED_PODS) -> str:
    """`a, b: why; c: other` from (pod, why) pairs, pods with the same reason together,
    at most `limit` named per reason (`a, b, c (and 5 more): why`)."""
    by_reason: dict[str, list[str]] = {}
    for pod, why in named:
        by_reason.setdefault(why, []).append(pod)
    parts = []
    for why, pods in by_reason.items():
        listed = ", ".join(pods[:limit])
        if len(pods) > limit:
            listed += f" (and {len(pods) - limit} more)"
        parts.append(f"{listed}: {why}")
    return "; ".join(parts)


def timestamp(value: Any) -> datetime | None:
    """An RFC 3339 timestamp of the API (`2026-12-07T04:30:00Z`), None when absent or bad."""
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None
