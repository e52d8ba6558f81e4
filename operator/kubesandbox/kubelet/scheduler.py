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

from kubesandbox.objects import Obj

DEFAULT_SCHEDULER = "default-scheduler"
SIMULATED_TAINT = "sandbox.bigmodel.dev/simulated"
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


def _tolerated(pod: Obj, taint: Obj) -> bool:
    for tol in pod.get("spec", {}).get("tolerations") or ():
        if tol.get("key") not in (None, "", taint["key"]):
            continue
        if tol.get("effect") not in (None, "", taint.get("effect")):
            continue
        if tol.get("operator") == "Exists" or tol.get("value", "") == taint.get("value", ""):
            return True
    return False


def _selects(pod: Obj, labels: Mapping[str, str]) -> bool:
    selector = pod.get("spec", {}).get("nodeSelector") or {}
    return all(labels.get(k) == v for k, v in selector.items())


def _expression(expr: Obj, values: Mapping[str, str]) -> bool:
    key, op, wanted = expr["key"], expr["operator"], expr.get("values") or []
    present = key in values
    if op == "In":
        return present and values[key] in wanted
    if op == "NotIn":
        return not present or values[key] not in wanted
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt") and present and values[key].lstrip("-").isdigit():
        number, bound = int(values[key]), int(wanted[0])
        return number > bound if op == "Gt" else number < bound
    return False


def _affinity(pod: Obj, node: Obj) -> bool:
    """Required node affinity: any term matches (all its expressions and fields)."""
    required = (
        ((pod.get("spec", {}).get("affinity") or {}).get("nodeAffinity") or {}).get(
            "requiredDuringSchedulingIgnoredDuringExecution"
        )
        or {}
    ).get("nodeSelectorTerms")
    if not required:
        return True
    labels = node["metadata"].get("labels") or {}
    fields = {"metadata.name": node["metadata"]["name"]}
    return any(
        all(_expression(e, labels) for e in term.get("matchExpressions") or ())
        and all(_expression(e, fields) for e in term.get("matchFields") or ())
        for term in required
    )


def untolerated_taint(pod: Obj, node: Obj) -> Obj | None:
    """The first NoSchedule/NoExecute taint the pod does not tolerate. The simulated-node
    taint yields to a nodeSelector that picks the node: that is the pod's intent."""
    explicit = bool(pod.get("spec", {}).get("nodeSelector"))
    for taint in node.get("spec", {}).get("taints") or ():
        if taint.get("effect") not in ("NoSchedule", "NoExecute"):
            continue
        if taint["key"] == SIMULATED_TAINT and explicit:
            continue
        if not _tolerated(pod, taint):
            found: Obj = taint
            return found
    return None


def fit_failures(pod: Obj, node: Obj, used: Resources) -> list[str]:
    """Why a pod does not fit a node (empty when it fits), as kube-scheduler reports it."""
    taint = untolerated_taint(pod, node)
    if taint is not None:
        return [f"node(s) had untolerated taint {{{taint['key']}: {taint.get('value', '')}}}"]
    labels = node["metadata"].get("labels") or {}
    if not (_selects(pod, labels) and _affinity(pod, node)):
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
    """The fitting node with the fewest pods (then by name), or why none fits."""
    failures = {
        n["metadata"]["name"]: fit_failures(pod, n, used.get(n["metadata"]["name"], {}))
        for n in nodes
    }
    fits = [name for name, reasons in failures.items() if not reasons]
    if fits:
        return Decision(min(fits, key=lambda n: (used.get(n, {}).get("pods", Decimal(0)), n)))
    return Decision(None, unschedulable_message(len(nodes), failures.values()))


def add(used: Resources, requests: Resources, sign: int = 1) -> Resources:
    """`used` plus (or minus) a pod's requests."""
    out = dict(used)
    for key, value in requests.items():
        out[key] = out.get(key, Decimal(0)) + sign * value
    return out
