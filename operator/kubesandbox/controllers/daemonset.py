"""The DaemonSet controller (apps/v1): one pod on every node the template's nodeSelector,
node affinity and tolerations admit (simulated nodes carry a NoSchedule taint, process nodes
none), pinned by node affinity as kube's controller does; pods of an older template replaced
within `maxUnavailable` (RollingUpdate) or left until deleted (OnDelete); the status `kubectl
rollout status` reads. `decide` is pure; `DaemonSetController` carries it out."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

from kubesandbox import placement
from kubesandbox.access import ControllerAccess
from kubesandbox.controllers.base import (
    Controller,
    controller_of,
    is_active,
    is_ready,
    owner_reference,
)
from kubesandbox.controllers.deployment import template_hash
from kubesandbox.objects import Obj

DS_KEY = "daemonsets.apps"
REVISION_LABEL = "controller-revision-hash"
GENERATION_LABEL = "pod-template-generation"
DAEMON_TOLERATIONS = tuple(
    {"key": f"node.kubernetes.io/{key}", "operator": "Exists", "effect": effect}
    for key, effect in (
        ("not-ready", "NoExecute"),
        ("unreachable", "NoExecute"),
        ("disk-pressure", "NoSchedule"),
        ("memory-pressure", "NoSchedule"),
        ("pid-pressure", "NoSchedule"),
        ("unschedulable", "NoSchedule"),
    )
)
"""What kube's controller adds to every daemon pod: it stays on a troubled node."""
_NODE_FIELD = "metadata.name"


def daemon_spec(template_spec: Obj) -> Obj:
    """The template's pod spec with the daemon tolerations added (those it lacks)."""
    spec = copy.deepcopy(template_spec)
    tolerations = spec.get("tolerations") or []
    spec["tolerations"] = tolerations + [t for t in DAEMON_TOLERATIONS if t not in tolerations]
    return spec


def should_run(ds: Obj, node: Obj) -> bool:
    """Whether the node gets a daemon pod: nodeName, nodeSelector and required node affinity
    match, and every NoSchedule/NoExecute taint is tolerated."""
    spec = daemon_spec(ds["spec"]["template"].get("spec") or {})
    wanted = spec.get("nodeName")
    if wanted and wanted != node["metadata"]["name"]:
        return False
    return placement.selects(spec, node) and not placement.untolerated_taints(spec, node)


def target_node(pod: Obj) -> str | None:
    """The node a daemon pod is for: where it is bound, else the node its affinity names."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    affinity = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    for term in affinity.get("nodeSelectorTerms") or ():
        for field in term.get("matchFields") or ():
            if field.get("key") == _NODE_FIELD and field.get("values"):
                return str(field["values"][0])
    return None


def daemon_pod(ds: Obj, node: str) -> Obj:
    """A new daemon pod for `node`: the template, the daemon tolerations, node affinity to
    that node alone (replacing the template's required terms), the revision labels."""
    meta = ds["metadata"]
    template = copy.deepcopy(ds["spec"]["template"])
    pod_meta = template.get("metadata") or {}
    pod_meta.pop("name", None)
    pod_meta["generateName"] = meta["name"] + "-"
    pod_meta["ownerReferences"] = [owner_reference(ds)]
    pod_meta["labels"] = {
        **(pod_meta.get("labels") or {}),
        REVISION_LABEL: template_hash(ds["spec"]["template"]),
        GENERATION_LABEL: str(meta.get("generation", 1)),
    }
    spec = daemon_spec(template.get("spec") or {})
    affinity = spec.setdefault("affinity", {}).setdefault("nodeAffinity", {})
    term = {"matchFields": [{"key": _NODE_FIELD, "operator": "In", "values": [node]}]}
    affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": [term]}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": spec}


def max_unavailable(ds: Obj, desired: int) -> int:
    """RollingUpdate's maxUnavailable as a pod count (an int or a percentage rounded up, at
    least 1)."""
    strategy = ds["spec"].get("updateStrategy") or {}
    value = (strategy.get("rollingUpdate") or {}).get("maxUnavailable", 1)
    if isinstance(value, str) and value.endswith("%"):
        return max(1, math.ceil(int(value[:-1]) * desired / 100))
    return max(1, int(value))


@dataclass(frozen=True)
class DaemonPlan:
    """Nodes to create a daemon pod on, pods to delete, and the status."""

    create: tuple[str, ...]
    delete: tuple[str, ...]
    status: Obj


def decide(ds: Obj, nodes: list[Obj], pods: list[Obj]) -> DaemonPlan:
    """One look at a DaemonSet: a pod where one is missing, none where none belongs (nor on
    nodes that are gone, nor finished ones), outdated pods replaced within the budget."""
    revision = template_hash(ds["spec"]["template"])
    wanted = {n["metadata"]["name"] for n in nodes if should_run(ds, n)}
    on_node: dict[str, list[Obj]] = {}
    delete = [p["metadata"]["name"] for p in pods if not is_active(p) and not _deleting(p)]
    for pod in sorted(filter(is_active, pods), key=lambda p: p["metadata"]["creationTimestamp"]):
        node = target_node(pod)
        if node is not None and node in wanted:
            on_node.setdefault(node, []).append(pod)
        else:
            delete.append(pod["metadata"]["name"])
    for extra in (p for kept in on_node.values() for p in kept[1:]):
        delete.append(extra["metadata"]["name"])
    running = {node: kept[0] for node, kept in on_node.items()}
    create = tuple(sorted(wanted - running.keys()))
    ready = sum(1 for pod in running.values() if is_ready(pod))
    updated = [
        p
        for p in running.values()
        if p["metadata"].get("labels", {}).get(REVISION_LABEL) == revision
    ]
    outdated = [p for p in running.values() if p not in updated]
    delete += _replaced(ds, outdated, len(wanted), ready)
    status: Obj = {
        "currentNumberScheduled": len(running),
        "desiredNumberScheduled": len(wanted),
        "numberMisscheduled": sum(1 for p in pods if is_active(p) and target_node(p) not in wanted),
        "numberReady": ready,
        "observedGeneration": ds["metadata"].get("generation", 1),
        "updatedNumberScheduled": len(updated),
        "numberAvailable": ready,
        "numberUnavailable": len(wanted) - ready,
    }
    optional = ("updatedNumberScheduled", "numberAvailable", "numberUnavailable")
    status = {k: v for k, v in status.items() if v or k not in optional}
    return DaemonPlan(create, tuple(delete), status)


def _replaced(ds: Obj, outdated: list[Obj], desired: int, ready: int) -> list[str]:
    """The outdated pods to delete now (their nodes then get current ones): with
    RollingUpdate, the unready ones, and ready ones while fewer than maxUnavailable of the
    desired pods are unavailable; none with OnDelete."""
    if (ds["spec"].get("updateStrategy") or {}).get("type") == "OnDelete":
        return []
    budget = max_unavailable(ds, desired) - (desired - ready)
    out = []
    for pod in sorted(outdated, key=is_ready):  # unready ones cost no availability
        if not is_ready(pod) or budget > 0:
            out.append(pod["metadata"]["name"])
            budget -= is_ready(pod)
    return out


def _deleting(pod: Obj) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


class DaemonSetController(Controller):
    """Keeps DaemonSets' pods on their nodes, reacting to DaemonSet, pod and node events."""

    user_agent = "sandbox-daemonset-controller"

    def __init__(self, api: ControllerAccess) -> None:
        super().__init__(api, [DS_KEY, "pods", "nodes"])

    async def handle(self, key: str, kind: str, obj: Obj) -> None:
        """Sync the DaemonSet that changed, the one that controls the pod that changed, or
        every one when a node changed."""
        if key == DS_KEY:
            if kind != "DELETED":
                self.sync(obj)
        elif key == "nodes":
            for ds in self.api.objects(DS_KEY, None):
                self.sync(ds)
        elif (owner := controller_of(obj, "DaemonSet")) is not None:
            found = self.api.by_uid(owner)
            if found is not None and found[0] == DS_KEY:
                self.sync(found[1])

    def sync(self, ds: Obj) -> None:
        """Create and delete daemon pods as decided, then write the status."""
        meta = ds["metadata"]
        if meta.get("deletionTimestamp"):
            return
        ns = meta["namespace"]
        nodes = self.api.objects("nodes", "")
        plan = decide(ds, nodes, self.api.dependents(meta["uid"], "pods"))
        for node in plan.create:
            self.api.create("pods", ns, daemon_pod(ds, node), self.user_agent)
        for pod in plan.delete:
            self.api.delete("pods", ns, pod)
        live = self.api.get(DS_KEY, ns, meta["name"])
        if live is not None:
            self.write(DS_KEY, live, plan.status)
