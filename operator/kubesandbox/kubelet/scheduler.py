"""Scheduling decisions (pure): which node fits a pod, or why none does, in kube-scheduler's
words. Filters run in kube-scheduler's order: taints, node affinity/selector, resources.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from kubernetes.utils.quantity import parse_quantity

from kubesandbox import placement
from kubesandbox.objects import Obj
from kubesandbox.placement import SIMULATED_TAINT

DEFAULT_SCHEDULER = "default-scheduler"
AFFINITY_MISMATCH = "node(s) didn't match Pod's node affinity/selector"
Resources = dict[str, Decimal]


@functools.lru_cache(maxsize=4096)
def quantity(value: Any) -> Decimal:
    """A Kubernetes quantity ("500m", "1Gi", 2) as a number (the same few values recur on
    every pod and node: parsed once each)."""
    return Decimal(parse_quantity(value))  # type: ignore[no-untyped-call]


def _sum(items: Iterable[Mapping[str, Any]]) -> Resources:
    out: Resources = {}
    for item in items:
        for key, value in item.items():
            out[key] = out.get(key, Decimal(0)) + quantity(value)
    return out


def container_requests(container: Obj) -> Mapping[str, Any]:
    """A container's requests, falling back to its limits as the API server defaults them."""
    resources = container.get("resources") or {}
    return {**(resources.get("limits") or {}), **(resources.get("requests") or {})}


def pod_requests(pod: Obj) -> Resources:
    """What a pod needs on a node: its containers' sum, or its largest init container."""
    spec = pod.get("spec", {})
    total = _sum(container_requests(c) for c in spec.get("containers", ()))
    for init in spec.get("initContainers", ()):
        for key, value in _sum([container_requests(init)]).items():
            total[key] = max(total.get(key, Decimal(0)), value)
    total["pods"] = Decimal(1)
    return total


def untolerated_taint(pod: Obj, node: Obj) -> Obj | None:
    """The first NoSchedule/NoExecute taint the pod does not tolerate. The simulated-node
    taint yields to a nodeSelector that picks the node: that is the pod's intent."""
    spec = pod.get("spec", {})
    explicit = bool(spec.get("nodeSelector"))
    for taint in placement.untolerated_taints(spec, node):
        if not (taint["key"] == SIMULATED_TAINT and explicit):
            return taint
    return None


def fit_failures(pod: Obj, node: Obj, used: Resources) -> list[str]:
    """Why a pod does not fit a node (empty when it fits), as kube-scheduler reports it."""
    taint = untolerated_taint(pod, node)
    if taint is not None:
        return [f"node(s) had untolerated taint {{{taint['key']}: {taint.get('value', '')}}}"]
    if not placement.selects(pod.get("spec", {}), node):
        return [AFFINITY_MISMATCH]
    allocatable = _sum([node.get("status", {}).get("allocatable") or {}])
    failures = []
    for key, need in sorted(pod_requests(pod).items()):
        if need and used.get(key, Decimal(0)) + need > allocatable.get(key, Decimal(0)):
            failures.append("Too many pods" if key == "pods" else f"Insufficient {key}")
    return failures


@dataclass(frozen=True)
class Decision:
    """A node for the pod, or the Unschedulable message."""

    node: str | None
    message: str = ""


def unschedulable_message(total: int, failures: Iterable[list[str]]) -> str:
    """`0/2 nodes are available: 1 Insufficient cpu, 1 Insufficient nvidia.com/gpu.`"""
    counts = Counter(reason for reasons in failures for reason in reasons)
    parts = sorted(f"{n} {reason}" for reason, n in counts.items())
    return f"0/{total} nodes are available: {', '.join(parts)}."


def schedule(pod: Obj, nodes: list[Obj], used: Mapping[str, Resources]) -> Decision:
    """The fitting node the pod prefers most (preferred node affinity), then with the fewest
    pods, then by name; or why none fits."""
    by_name = {n["metadata"]["name"]: n for n in nodes}
    failures = {name: fit_failures(pod, n, used.get(name, {})) for name, n in by_name.items()}
    fits = [name for name, reasons in failures.items() if not reasons]
    spec = pod.get("spec") or {}

    def rank(name: str) -> tuple[int, Decimal, str]:
        pods = used.get(name, {}).get("pods", Decimal(0))
        return -placement.preference(spec, by_name[name]), pods, name

    if fits:
        return Decision(min(fits, key=rank))
    return Decision(None, unschedulable_message(len(nodes), failures.values()))


def add(used: Resources, requests: Resources, sign: int = 1) -> Resources:
    """`used` plus (or minus) a pod's requests."""
    out = dict(used)
    for key, value in requests.items():
        out[key] = out.get(key, Decimal(0)) + sign * value
    return out
