"""Whether a pod may go to a node (pure): taints and tolerations, node selector, required
node affinity; and how much it prefers the node (preferred node affinity). The scheduler and
the DaemonSet controller both ask it."""

from __future__ import annotations

from collections.abc import Mapping

from kubesandbox import legacy
from kubesandbox.objects import Obj

SIMULATED_TAINT = legacy.DOMAIN + "simulated"
"""The NoSchedule taint (and the label) of simulated nodes, whose pods run no process."""


def tolerates(pod_spec: Obj, taint: Obj) -> bool:
    """Whether one of the pod's tolerations matches the taint (key, effect, value); a
    toleration of a sandbox taint's deprecated key still matches it."""
    for tol in pod_spec.get("tolerations") or ():
        if tol.get("key") not in (None, "", *legacy.spellings(taint["key"])):
            continue
        if tol.get("effect") not in (None, "", taint.get("effect")):
            continue
        if tol.get("operator") == "Exists" or tol.get("value", "") == taint.get("value", ""):
            legacy.warn_old(tol.get("key") or taint["key"], taint["key"])
            return True
    return False


def untolerated_taints(pod_spec: Obj, node: Obj) -> list[Obj]:
    """The node's NoSchedule and NoExecute taints the pod does not tolerate."""
    return [
        taint
        for taint in node.get("spec", {}).get("taints") or ()
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(pod_spec, taint)
    ]


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


def _affinity(pod_spec: Obj, node: Obj) -> bool:
    """Required node affinity: any term matches (all its expressions and fields)."""
    required = (
        ((pod_spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
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


def selects(pod_spec: Obj, node: Obj) -> bool:
    """Whether the node matches the pod's nodeSelector and required node affinity."""
    labels = node["metadata"].get("labels") or {}
    wanted = pod_spec.get("nodeSelector") or {}
    return all(labels.get(k) == v for k, v in wanted.items()) and _affinity(pod_spec, node)


def preference(pod_spec: Obj, node: Obj) -> int:
    """The summed weights of the pod's preferred node affinity terms the node matches (the
    score kube-scheduler's NodeAffinity plugin gives before normalizing)."""
    preferred = ((pod_spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "preferredDuringSchedulingIgnoredDuringExecution"
    ) or ()
    labels = node["metadata"].get("labels") or {}
    fields = {"metadata.name": node["metadata"]["name"]}
    return sum(
        int(term.get("weight", 0))
        for term in preferred
        if all(_expression(e, labels) for e in term["preference"].get("matchExpressions") or ())
        and all(_expression(e, fields) for e in term["preference"].get("matchFields") or ())
    )
