"""Nodes and the agents that run their pods: the seam between the API and a kubelet.

`NodeAgent` is the interface; `SimulatedAgent` (like KWOK) makes pods Running and Ready
without any process and finishes them on the `sandbox.bigmodel.dev/exit-code` annotation.
`NodeHost` registers the agents' nodes, schedules pods onto them (`scheduler`) and hands
every pod change to the agent of its node.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import hashlib
import logging
import os
from collections.abc import Mapping

from kubesandbox.apiserver.cluster import Cluster
from kubesandbox.apiserver.errors import ApiError
from kubesandbox.kubelet.scheduler import (
    DEFAULT_SCHEDULER,
    SIMULATED_TAINT,
    Resources,
    add,
    pod_requests,
    schedule,
)
from kubesandbox.objects import Obj, now

EXIT_CODE_ANNOTATION = "sandbox.bigmodel.dev/exit-code"
SIMULATED_LABEL = SIMULATED_TAINT
GPU = "nvidia.com/gpu"
_FINISHED = ("Succeeded", "Failed")

log = logging.getLogger(__name__)


def node_object(
    name: str, gpus: int, labels: Mapping[str, str], taints: list[Obj], memory_ki: int
) -> Obj:
    """A Ready Node with cpu, memory, pods and `nvidia.com/gpu` capacity."""
    resources = {
        "cpu": str(os.cpu_count() or 1),
        "memory": f"{memory_ki}Ki",
        "pods": "110",
        GPU: str(gpus),
        "ephemeral-storage": "100Gi",
    }
    stamp = now()
    condition = {"lastHeartbeatTime": stamp, "lastTransitionTime": stamp}
    pressure = [
        condition | {"type": t, "status": "False", "reason": f"KubeletHas{r}", "message": m}
        for t, r, m in (
            ("MemoryPressure", "SufficientMemory", "kubelet has sufficient memory available"),
            ("DiskPressure", "NoDiskPressure", "kubelet has no disk pressure"),
            ("PIDPressure", "SufficientPID", "kubelet has sufficient PID available"),
        )
    ]
    ready = condition | {
        "type": "Ready",
        "status": "True",
        "reason": "KubeletReady",
        "message": "kubelet is posting ready status",
    }
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "node.kubernetes.io/instance-type": "sandbox",
                **labels,
            },
        },
        "spec": {"taints": taints} if taints else {},
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "conditions": [*pressure, ready],
            "addresses": [
                {"type": "InternalIP", "address": "127.0.0.1"},
                {"type": "Hostname", "address": name},
            ],
            "nodeInfo": {
                "kubeletVersion": "v1.33.0-sandbox",
                "containerRuntimeVersion": "sandbox://0.1",
                "operatingSystem": "linux",
                "architecture": "amd64",
                "osImage": "bigmodel sandbox",
                "kernelVersion": os.uname().release,
            },
        },
    }


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
    exit_code = (pod["metadata"].get("annotations") or {}).get(EXIT_CODE_ANNOTATION)
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


class NodeAgent(abc.ABC):
    """Runs the pods bound to its nodes: the seam between the API and a kubelet."""

    @abc.abstractmethod
    def nodes(self) -> list[Obj]:
        """The Node objects this agent registers."""

    @abc.abstractmethod
    async def sync_pod(self, cluster: Cluster, pod: Obj) -> None:
        """React to a pod on one of its nodes being added or changed."""

    @abc.abstractmethod
    async def remove_pod(self, cluster: Cluster, pod: Obj) -> None:
        """React to a pod on one of its nodes being removed from the API."""

    def terminates_gracefully(self) -> bool:
        """Whether deleting its pods waits for the agent (which then deletes with grace 0)."""
        return False

    async def close(self) -> None:  # noqa: B027 - optional hook, nothing to stop by default
        """Stop everything the agent started (the sandbox is stopping)."""


class SimulatedAgent(NodeAgent):
    """Nodes `sandbox-sim-<i>` whose pods run without any process (like KWOK)."""

    def __init__(self, count: int, gpus_per_node: int) -> None:
        self.count = count
        self.gpus = gpus_per_node

    def nodes(self) -> list[Obj]:
        """Simulated nodes, labelled and tainted `sandbox.bigmodel.dev/simulated`."""
        taint = {"key": SIMULATED_LABEL, "value": "true", "effect": "NoSchedule"}
        return [
            node_object(
                f"sandbox-sim-{i}",
                self.gpus,
                {SIMULATED_LABEL: "true", "type": "simulated"},
                [taint],
                64 * 1024 * 1024,
            )
            for i in range(self.count)
        ]

    async def sync_pod(self, cluster: Cluster, pod: Obj) -> None:
        """Write the simulated status when it differs from the pod's."""
        if pod["metadata"].get("deletionTimestamp"):
            return
        if (pod.get("status") or {}).get("phase") in _FINISHED:
            return
        status = simulated_pod_status(pod, now())
        if status == pod.get("status"):
            return
        meta = pod["metadata"]
        rt = cluster.resource("", "v1", "pods")
        with contextlib.suppress(ApiError):  # deleted or changed meanwhile: a new event follows
            cluster.update(
                rt,
                meta["namespace"],
                meta["name"],
                {**pod, "status": status},
                subresource="status",
                user_agent="sandbox-simulated-kubelet",
            )

    async def remove_pod(self, cluster: Cluster, pod: Obj) -> None:
        """Nothing runs, so nothing to stop."""


class NodeHost:
    """Registers agents' nodes, schedules pending pods onto them and dispatches pod changes.

    The scheduler keeps each node's requested resources current from pod events and retries
    unschedulable pods whenever resources are released.
    """

    def __init__(self, cluster: Cluster, agents: list[NodeAgent]) -> None:
        self.cluster = cluster
        self.agents = agents
        self._by_node: dict[str, NodeAgent] = {}
        self._nodes: list[Obj] = []
        self._placed: dict[str, tuple[str, Resources]] = {}  # pod uid -> (node, requests)
        self._used: dict[str, Resources] = {}  # node name -> requested resources
        self._pending: dict[str, Obj] = {}  # pod uid -> unschedulable pod
        self._task: asyncio.Task[None] | None = None
        nodes_rt = cluster.resource("", "v1", "nodes")
        for agent in agents:
            for node in agent.nodes():
                cluster.create(nodes_rt, "", node)
                self._by_node[node["metadata"]["name"]] = agent
                self._nodes.append(node)
        cluster.pod_deletion_hooks.append(self._graceful)

    def _agent(self, pod: Obj) -> NodeAgent | None:
        return self._by_node.get(pod.get("spec", {}).get("nodeName", ""))

    def _graceful(self, pod: Obj) -> bool:
        agent = self._agent(pod)
        return agent is not None and agent.terminates_gracefully()

    def start(self) -> None:
        """Start dispatching pod changes."""
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop dispatching, then stop the agents."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for agent in self.agents:
            await agent.close()

    async def _run(self) -> None:
        pods = self.cluster.resource("", "v1", "pods")
        watcher = self.cluster.watch(pods, None)
        try:
            while True:
                item = await watcher.queue.get()
                if item is None:
                    return
                kind, pod = item
                try:
                    await self._handle(kind, pod)
                except Exception:  # one malformed pod must not stop every node
                    meta = pod["metadata"]
                    log.exception("pod %s/%s: %s failed", meta.get("namespace"), meta["name"], kind)
        finally:
            self.cluster.store.unwatch(watcher)

    def _account(self, kind: str, pod: Obj) -> bool:
        """Keep each node's requested resources current; True when some were released."""
        uid = pod["metadata"]["uid"]
        node = pod.get("spec", {}).get("nodeName", "")
        finished = (pod.get("status") or {}).get("phase") in _FINISHED
        active = kind != "DELETED" and node and not finished
        before = self._placed.pop(uid, None)
        if before is not None:
            self._used[before[0]] = add(self._used[before[0]], before[1], -1)
        if active:
            self._placed[uid] = (node, pod_requests(pod))
            self._used[node] = add(self._used.get(node, {}), self._placed[uid][1])
        return before is not None and not active

    async def _handle(self, kind: str, pod: Obj) -> None:
        released = self._account(kind, pod)
        agent = self._agent(pod)
        if kind == "DELETED":
            self._pending.pop(pod["metadata"]["uid"], None)
            if agent is not None:
                await agent.remove_pod(self.cluster, pod)
        elif agent is not None:
            await agent.sync_pod(self.cluster, pod)
        elif not pod.get("spec", {}).get("nodeName"):
            self._schedule(pod)
        if released:
            for waiting in list(self._pending.values()):
                self._schedule(waiting)

    def _schedule(self, pod: Obj) -> None:
        """Bind a pending pod of the default scheduler, or mark it Unschedulable."""
        spec, meta = pod.get("spec", {}), pod["metadata"]
        if spec.get("schedulerName", DEFAULT_SCHEDULER) != DEFAULT_SCHEDULER:
            return
        if meta.get("deletionTimestamp"):
            return
        decision = schedule(pod, self._nodes, self._used)
        rt = self.cluster.resource("", "v1", "pods")
        if decision.node is None:
            self._pending[meta["uid"]] = pod
            self._mark_unschedulable(pod, decision.message)
            return
        self._pending.pop(meta["uid"], None)
        live = self.cluster.store.get("pods", meta["namespace"], meta["name"]) or pod
        bound = {**live, "spec": {**live["spec"], "nodeName": decision.node}}
        with contextlib.suppress(ApiError):
            self.cluster.update(
                rt, meta["namespace"], meta["name"], bound, user_agent="sandbox-scheduler"
            )
        # reserve now: the next pending pod must see these resources as taken
        self._account("MODIFIED", bound)

    def _mark_unschedulable(self, pod: Obj, message: str) -> None:
        """Set PodScheduled=False, reason Unschedulable, when not already said."""
        meta = pod["metadata"]
        status = pod.get("status") or {}
        condition = {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": message,
        }
        others = [c for c in status.get("conditions", ()) if c["type"] != "PodScheduled"]
        old: Obj = next(
            (c for c in status.get("conditions", ()) if c["type"] == "PodScheduled"), {}
        )
        if all(old.get(k) == v for k, v in condition.items()):
            return
        stamped = {**condition, "lastProbeTime": None, "lastTransitionTime": now()}
        body = {
            "metadata": {"name": meta["name"]},
            "status": {**status, "phase": "Pending", "conditions": [*others, stamped]},
        }
        rt = self.cluster.resource("", "v1", "pods")
        with contextlib.suppress(ApiError):
            self.cluster.update(
                rt, meta["namespace"], meta["name"], body, subresource="status",
                user_agent="sandbox-scheduler",
            )  # fmt: skip
