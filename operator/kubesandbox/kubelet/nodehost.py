"""The node host: registers the agents' nodes, schedules pending pods onto them (`scheduler`)
and hands every pod change to the agent of its node."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from kubesandbox.access import KubeletAccess, Rejected
from kubesandbox.kubelet import disruption
from kubesandbox.kubelet.nodes import FINISHED, NodeAgent, RunningPod
from kubesandbox.kubelet.scheduler import DEFAULT_SCHEDULER, Resources, add, pod_requests, schedule
from kubesandbox.objects import Obj, now
from kubesandbox.podstreams import Connection, Session, Terminal, Unavailable

_USER_AGENT = "sandbox-scheduler"

log = logging.getLogger(__name__)


class NodeHost:
    """Registers agents' nodes, schedules pending pods onto them and dispatches pod changes.

    The scheduler keeps each node's requested resources current from pod events and retries
    unschedulable pods whenever resources are released. It is also the API server's way into
    running pods (`podstreams.PodStreams`: exec, attach, port-forward), through their node.
    """

    def __init__(self, api: KubeletAccess, agents: list[NodeAgent]) -> None:
        self.api = api
        self.agents = agents
        self._by_node: dict[str, NodeAgent] = {}
        self._nodes: list[Obj] = []
        self._placed: dict[str, tuple[str, Resources]] = {}  # pod uid -> (node, requests)
        self._used: dict[str, Resources] = {}  # node name -> requested resources
        self._pending: dict[str, Obj] = {}  # pod uid -> unschedulable pod
        self._bound: dict[str, Obj] = {}  # pod uid -> the latest of each active bound pod
        self._task: asyncio.Task[None] | None = None
        for agent in agents:
            for node in agent.nodes():
                api.create("nodes", "", node)
                self._by_node[node["metadata"]["name"]] = agent
                self._nodes.append(node)
        api.hold_pod_deletion(self._graceful)

    def _agent(self, pod: Obj) -> NodeAgent | None:
        return self._by_node.get(pod.get("spec", {}).get("nodeName", ""))

    def _graceful(self, pod: Obj) -> bool:
        agent = self._agent(pod)
        return agent is not None and agent.terminates_gracefully()

    def _running(self, pod: Obj) -> RunningPod:
        agent = self._agent(pod)
        running = agent.running(pod) if agent is not None else None
        if running is None:
            node = pod.get("spec", {}).get("nodeName")
            why = f"its node {node} runs no processes" if node else "it is not scheduled"
            raise Unavailable(f"pod {pod['metadata']['name']} has no process to reach: {why}")
        return running

    async def exec(
        self, pod: Obj, container: str, command: Sequence[str], stdin: bool, tty: Terminal | None
    ) -> Session:
        """Run `command` in a container of the pod (`PodStreams`)."""
        return await self._running(pod).exec(container, command, stdin, tty)

    async def attach(self, pod: Obj, container: str) -> Session:
        """Follow a container of the pod (`PodStreams`)."""
        return self._running(pod).attach(container)

    async def connect(self, pod: Obj, port: int) -> Connection:
        """Connect to a port of the pod (`PodStreams`)."""
        return await self._running(pod).connect(port)

    def node_objects(self) -> list[Obj]:
        """The registered nodes, as the scheduler sees them."""
        return list(self._nodes)

    # -- faults: what happens to pods and nodes that the kubelet or the cluster causes ---------

    async def kill(self, pod: Obj, children_only: bool = False) -> int:
        """SIGKILL the pod's processes (`NodeAgent.kill`); how many were killed."""
        agent = self._agent(pod)
        return 0 if agent is None else await agent.kill(self.api, pod, children_only)

    async def evict(self, pod: Obj, message: str = disruption.EVICTION_MESSAGE) -> None:
        """Evict the pod as node pressure makes the kubelet do: Failed, reason Evicted."""
        agent = self._agent(pod)
        if agent is not None:
            await agent.evict(self.api, pod, message)

    async def set_ready(self, name: str, ready: bool) -> list[str]:
        """Mark node `name` Ready, or lost: Unknown and tainted unreachable, as the node
        lifecycle controller marks a node that stopped reporting. The active pods of a lost
        node that do not tolerate that lose their processes (SIGKILL: the machine is gone)
        and are deleted, as the taint manager does; returns their names."""
        index = next(i for i, n in enumerate(self._nodes) if n["metadata"]["name"] == name)
        live = self.api.get("nodes", "", name) or self._nodes[index]
        wanted = disruption.node_status(live, ready, now())
        stored = self.api.update("nodes", "", name, wanted, _USER_AGENT)  # the taints
        body = {**stored, "status": wanted["status"]}
        self._nodes[index] = self.api.update("nodes", "", name, body, _USER_AGENT, status=True)
        if ready:
            for waiting in list(self._pending.values()):
                self._schedule(waiting)
            return []
        lost = [p for p in self._bound.values() if p["spec"].get("nodeName") == name]
        return [await self._evict_lost(p) for p in lost if not disruption.tolerates_unreachable(p)]

    async def _evict_lost(self, pod: Obj) -> str:
        """The taint manager's eviction of a pod of a lost node; returns its name."""
        meta = pod["metadata"]
        ns, name = meta["namespace"], meta["name"]
        why = f"Taint manager: deleting due to NoExecute taint key {disruption.UNREACHABLE}"
        status = disruption.disruption_target(
            pod.get("status") or {}, "DeletionByTaintManager", why, now()
        )
        with contextlib.suppress(Rejected):
            self.api.update("pods", ns, name, {**pod, "status": status}, _USER_AGENT, status=True)
        await self.kill(pod)
        with contextlib.suppress(Rejected):
            self.api.delete("pods", ns, name, grace_seconds=0)
        return str(name)

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
        async for kind, pod in self.api.watch("pods"):
            try:
                await self._handle(kind, pod)
            except Exception:  # one malformed pod must not stop every node
                meta = pod["metadata"]
                log.exception("pod %s/%s: %s failed", meta.get("namespace"), meta["name"], kind)

    def _account(self, kind: str, pod: Obj) -> bool:
        """Keep each node's requested resources current; True when some were released."""
        uid = pod["metadata"]["uid"]
        node = pod.get("spec", {}).get("nodeName", "")
        finished = (pod.get("status") or {}).get("phase") in FINISHED
        active = kind != "DELETED" and node and not finished
        before = self._placed.pop(uid, None)
        if before is not None:
            self._used[before[0]] = add(self._used[before[0]], before[1], -1)
        self._bound.pop(uid, None)
        if active:
            self._bound[uid] = pod
            self._placed[uid] = (node, pod_requests(pod))
            self._used[node] = add(self._used.get(node, {}), self._placed[uid][1])
        return before is not None and not active

    async def _handle(self, kind: str, pod: Obj) -> None:
        released = self._account(kind, pod)
        agent = self._agent(pod)
        if kind == "DELETED":
            self._pending.pop(pod["metadata"]["uid"], None)
            if agent is not None:
                await agent.remove_pod(self.api, pod)
        elif agent is not None:
            await agent.sync_pod(self.api, pod)
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
        if decision.node is None:
            self._pending[meta["uid"]] = pod
            self._mark_unschedulable(pod, decision.message)
            return
        self._pending.pop(meta["uid"], None)
        live = self.api.get("pods", meta["namespace"], meta["name"]) or pod
        bound = {**live, "spec": {**live["spec"], "nodeName": decision.node}}
        with contextlib.suppress(Rejected):
            self.api.update("pods", meta["namespace"], meta["name"], bound, _USER_AGENT)
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
        with contextlib.suppress(Rejected):
            self.api.update("pods", meta["namespace"], meta["name"], body, _USER_AGENT, status=True)
