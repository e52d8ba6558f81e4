"""The ReplicaSet controller: keeps `spec.replicas` active pods and reports their status."""

from __future__ import annotations

import copy

from kubesandbox.access import ControllerAccess
from kubesandbox.controllers.base import (
    Controller,
    controller_of,
    is_active,
    is_ready,
    owner_reference,
)
from kubesandbox.objects import Obj

RS_KEY = "replicasets.apps"


def deletion_order(pods: list[Obj]) -> list[Obj]:
    """Pods to delete first when scaling down: unscheduled, then not ready, newest first."""

    def rank(pod: Obj) -> tuple[bool, bool, str]:
        return (
            bool(pod.get("spec", {}).get("nodeName")),
            is_ready(pod),
            "".join(chr(255 - ord(c)) for c in pod["metadata"].get("creationTimestamp", "")),
        )

    return sorted(pods, key=rank)


def replica_set_status(rs: Obj, active: list[Obj]) -> Obj:
    """replicas, fullyLabeledReplicas, readyReplicas, availableReplicas, observedGeneration."""
    ready = sum(1 for p in active if is_ready(p))
    return {
        "replicas": len(active),
        "fullyLabeledReplicas": len(active),
        "readyReplicas": ready,
        "availableReplicas": ready,
        "observedGeneration": rs["metadata"].get("generation", 1),
    }


def pod_from_template(rs: Obj) -> Obj:
    """A new pod of a ReplicaSet (named by the API server from `<rs>-`)."""
    template = copy.deepcopy(rs["spec"]["template"])
    meta = template.get("metadata") or {}
    meta.pop("name", None)
    meta["generateName"] = rs["metadata"]["name"] + "-"
    meta["ownerReferences"] = [owner_reference(rs)]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template.get("spec", {})}


class ReplicaSetController(Controller):
    """Creates and deletes pods of ReplicaSets, reacting to ReplicaSet and pod events."""

    user_agent = "sandbox-replicaset-controller"

    def __init__(self, api: ControllerAccess) -> None:
        super().__init__(api, [RS_KEY, "pods"])

    async def handle(self, key: str, kind: str, obj: Obj) -> None:
        """Sync the ReplicaSet that changed, or the one that controls the pod that changed."""
        if key == RS_KEY:
            if kind != "DELETED":
                self.sync(obj)
            return
        owner = controller_of(obj, "ReplicaSet")
        found = self.api.by_uid(owner) if owner else None
        if found is not None and found[0] == RS_KEY:
            self.sync(found[1])

    def sync(self, rs: Obj) -> None:
        """Create or delete pods towards spec.replicas, then write the status."""
        meta = rs["metadata"]
        if meta.get("deletionTimestamp"):
            return
        ns = meta["namespace"]
        pods = self.api.dependents(meta["uid"], "pods")
        active = [p for p in pods if is_active(p)]
        missing = int(rs["spec"].get("replicas", 1)) - len(active)
        for _ in range(missing):
            self.api.create("pods", ns, pod_from_template(rs), self.user_agent)
        for pod in deletion_order(active)[: max(0, -missing)]:
            self.api.delete("pods", ns, pod["metadata"]["name"])
        live = self.api.get(RS_KEY, ns, meta["name"])
        if live is None:
            return
        pods = self.api.dependents(meta["uid"], "pods")
        self.write(RS_KEY, live, replica_set_status(live, [p for p in pods if is_active(p)]))
