"""What the cluster reports when it stops a pod or loses a node (pure): an eviction by the
kubelet, the `DisruptionTarget` condition, a node's Ready condition and its taints."""

from __future__ import annotations

from kubesandbox.objects import Obj

UNREACHABLE = "node.kubernetes.io/unreachable"
"""The taint the node lifecycle controller puts on a node that stopped reporting."""
EVICTED = "Evicted"
EVICTION_MESSAGE = "The node was low on resource: memory. "
"""The kubelet's words when node pressure evicts a pod (kube adds the quantities)."""
KILLED = 137
"""Exit code of a container stopped by SIGKILL."""


def _with_condition(conditions: list[Obj], condition: Obj) -> list[Obj]:
    return [*(c for c in conditions if c.get("type") != condition["type"]), condition]


def disruption_target(status: Obj, reason: str, message: str, stamp: str) -> Obj:
    """`status` with a `DisruptionTarget` condition: why the cluster stops the pod
    (`TerminationByKubelet`, `DeletionByTaintManager`, ...)."""
    condition = {
        "type": "DisruptionTarget",
        "status": "True",
        "reason": reason,
        "message": message,
        "lastProbeTime": None,
        "lastTransitionTime": stamp,
    }
    return {
        **status,
        "conditions": _with_condition(list(status.get("conditions") or ()), condition),
    }


def evicted(status: Obj, message: str, stamp: str) -> Obj:
    """The status of a pod the kubelet evicted (node pressure): Failed, reason Evicted, not
    ready, every container that was not done terminated by SIGKILL."""
    containers = []
    for container in status.get("containerStatuses") or ():
        state = container.get("state") or {}
        if "terminated" not in state:
            started = (state.get("running") or {}).get("startedAt") or stamp
            stopped = {"exitCode": KILLED, "reason": "Error", "startedAt": started}
            state = {"terminated": {**stopped, "finishedAt": stamp}}
        containers.append({**container, "state": state, "ready": False, "started": False})
    conditions = [
        {**c, "status": "False", "lastTransitionTime": stamp}
        if c.get("type") in ("Ready", "ContainersReady") and c.get("status") == "True"
        else c
        for c in status.get("conditions") or ()
    ]
    out = {
        **status,
        "phase": "Failed",
        "reason": EVICTED,
        "message": message,
        "conditions": conditions,
        "containerStatuses": containers,
    }
    return disruption_target(out, "TerminationByKubelet", message, stamp)


def node_status(node: Obj, ready: bool, stamp: str) -> Obj:
    """The node with its Ready condition True (`KubeletReady`) or Unknown (stopped
    reporting, as the node lifecycle controller marks it) and its unreachable taints."""
    ready_condition = {
        "type": "Ready",
        "status": "True" if ready else "Unknown",
        "reason": "KubeletReady" if ready else "NodeStatusUnknown",
        "message": "kubelet is posting ready status"
        if ready
        else "Kubelet stopped posting node status.",
        "lastHeartbeatTime": stamp,
        "lastTransitionTime": stamp,
    }
    status = node.get("status") or {}
    conditions = _with_condition(list(status.get("conditions") or ()), ready_condition)
    spec = node.get("spec") or {}
    taints = [t for t in spec.get("taints") or () if t.get("key") != UNREACHABLE]
    if not ready:
        taints += [
            {"key": UNREACHABLE, "effect": effect, "timeAdded": stamp}
            for effect in ("NoSchedule", "NoExecute")
        ]
    new_spec = {k: v for k, v in spec.items() if k != "taints"}
    if taints:
        new_spec["taints"] = taints
    return {**node, "spec": new_spec, "status": {**status, "conditions": conditions}}


def tolerates_unreachable(pod: Obj) -> bool:
    """Whether the pod stays on an unreachable node: it tolerates the NoExecute taint with
    no `tolerationSeconds` (a bounded toleration is evicted at once, the sandbox does not
    wait it out)."""
    for toleration in pod.get("spec", {}).get("tolerations") or ():
        if toleration.get("key") not in (None, "", UNREACHABLE):
            continue
        if toleration.get("effect") not in (None, "", "NoExecute"):
            continue
        if toleration.get("operator") == "Exists" and toleration.get("tolerationSeconds") is None:
            return True
    return False
