"""Simulated nodes (like KWOK): pods Running and Ready without any process, finished on the
`kubesandbox.dev/exit-code` annotation."""

from __future__ import annotations

import contextlib
import hashlib

from kubesandbox import legacy
from kubesandbox.access import KubeletAccess, Rejected
from kubesandbox.kubelet.disruption import KILLED, evicted
from kubesandbox.kubelet.nodes import FINISHED, Capacity, NodeAgent, node_object
from kubesandbox.objects import Obj, now
from kubesandbox.placement import SIMULATED_TAINT

EXIT_CODE_ANNOTATION = legacy.DOMAIN + "exit-code"
SIMULATED_LABEL = SIMULATED_TAINT
_USER_AGENT = "sandbox-simulated-kubelet"


def _pod_ip(pod: Obj) -> str:
    digest = hashlib.sha256(pod["metadata"]["uid"].encode()).digest()
    return f"10.244.{digest[0]}.{digest[1] % 254 + 1}"


def _condition(kind: str, status: bool, stamp: str) -> Obj:
    return {"type": kind, "status": str(status), "lastTransitionTime": stamp}


def simulated_pod_status(pod: Obj, stamp: str) -> Obj:
    """The status a simulated node reports: Running and Ready, or finished on the exit-code
    annotation (0: Succeeded, else Failed with that exit code)."""
    old = pod.get("status") or {}
    started = old.get("startTime", stamp)
    exit_code = legacy.lookup(pod["metadata"].get("annotations") or {}, EXIT_CODE_ANNOTATION)
    finished = exit_code is not None and exit_code.lstrip("-").isdigit()
    code = int(exit_code) if finished and exit_code is not None else 0
    statuses = []
    for c in pod.get("spec", {}).get("containers", ()):
        running = {"running": {"startedAt": started}}
        state = (
            {
                "terminated": {
                    "exitCode": code,
                    "reason": "Completed" if code == 0 else "Error",
                    "startedAt": started,
                    "finishedAt": stamp,
                    "containerID": f"sandbox://{c['name']}",
                }
            }
            if finished
            else running
        )
        statuses.append(
            {
                "name": c["name"],
                "image": c.get("image", ""),
                "imageID": c.get("image", ""),
                "containerID": f"sandbox://{c['name']}",
                "ready": not finished,
                "started": not finished,
                "restartCount": 0,
                "state": state,
            }
        )
    previous = {c["containerID"]: c for c in old.get("containerStatuses", ())}
    for s in statuses:  # keep the finish time of a container that already finished
        if finished and "terminated" in previous.get(s["containerID"], {}).get("state", {}):
            s["state"] = previous[s["containerID"]]["state"]
    ready = not finished
    since = {c["type"]: c for c in old.get("conditions", ())}
    conditions = []
    for kind, status in (
        ("PodReadyToStartContainers", ready),
        ("Initialized", True),
        ("Ready", ready),
        ("ContainersReady", ready),
        ("PodScheduled", True),
    ):
        previous_condition = since.get(kind)
        same = previous_condition is not None and previous_condition["status"] == str(status)
        conditions.append(previous_condition if same else _condition(kind, status, stamp))
    phase = ("Succeeded" if code == 0 else "Failed") if finished else "Running"
    return {
        **old,
        "phase": phase,
        "conditions": conditions,
        "hostIP": "127.0.0.1",
        "hostIPs": [{"ip": "127.0.0.1"}],
        "podIP": old.get("podIP") or _pod_ip(pod),
        "podIPs": [{"ip": old.get("podIP") or _pod_ip(pod)}],
        "startTime": started,
        "containerStatuses": statuses,
    }


class SimulatedAgent(NodeAgent):
    """Nodes `sandbox-sim-<i>` whose pods run without any process (like KWOK)."""

    def __init__(self, count: int, gpus_per_node: int, cpus: str) -> None:
        self.count = count
        self.gpus = gpus_per_node
        self.cpus = cpus

    def nodes(self) -> list[Obj]:
        """Simulated nodes, tainted `kubesandbox.dev/simulated` and labelled so (under the
        deprecated key too)."""
        taint = {"key": SIMULATED_LABEL, "value": "true", "effect": "NoSchedule"}
        return [
            node_object(
                f"sandbox-sim-{i}",
                self.gpus,
                legacy.with_old_names({SIMULATED_LABEL: "true", "type": "simulated"}),
                [taint],
                Capacity(self.cpus, 64 * 1024 * 1024),
            )
            for i in range(self.count)
        ]

    async def sync_pod(self, api: KubeletAccess, pod: Obj) -> None:
        """Write the simulated status when it differs from the pod's."""
        if pod["metadata"].get("deletionTimestamp"):
            return
        if (pod.get("status") or {}).get("phase") in FINISHED:
            return
        status = simulated_pod_status(pod, now())
        if status == pod.get("status"):
            return
        meta, body = pod["metadata"], {**pod, "status": status}
        with contextlib.suppress(Rejected):  # deleted or changed meanwhile: a new event follows
            api.update("pods", meta["namespace"], meta["name"], body, _USER_AGENT, status=True)

    async def remove_pod(self, api: KubeletAccess, pod: Obj) -> None:
        """Nothing runs, so nothing to stop."""

    async def kill(self, api: KubeletAccess, pod: Obj, children_only: bool) -> int:
        """The pod's one "process" ends with 137, as SIGKILL ends one (its children, which
        it has none of, are nothing to kill)."""
        if children_only or (pod.get("status") or {}).get("phase") in FINISHED:
            return 0
        meta = pod["metadata"]
        annotations = {**(meta.get("annotations") or {}), EXIT_CODE_ANNOTATION: str(KILLED)}
        body = {**pod, "metadata": {**meta, "annotations": annotations}}
        with contextlib.suppress(Rejected):
            api.update("pods", meta["namespace"], meta["name"], body, _USER_AGENT)
            return 1
        return 0

    async def evict(self, api: KubeletAccess, pod: Obj, message: str) -> None:
        """Report the pod Failed with reason Evicted."""
        if (pod.get("status") or {}).get("phase") in FINISHED:
            return
        meta, status = pod["metadata"], evicted(pod.get("status") or {}, message, now())
        with contextlib.suppress(Rejected):
            body = {**pod, "status": status}
            api.update("pods", meta["namespace"], meta["name"], body, _USER_AGENT, status=True)
