"""Nodes and the agents that run their pods: the seam between the API and a kubelet.

`NodeAgent` is the interface: the process kubelet (`agent.ProcessAgent`) and the simulated
nodes (`simulated.SimulatedAgent`) implement it; `nodehost.NodeHost` registers their nodes,
schedules pods onto them and hands every pod change to the agent of its node.
"""

from __future__ import annotations

import abc
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from kubesandbox.access import KubeletAccess
from kubesandbox.objects import Obj, now
from kubesandbox.podstreams import Connection, Session, Terminal

GPU = "nvidia.com/gpu"
FINISHED = ("Succeeded", "Failed")  # the phases of a pod that runs no more
KUBELET_VERSION = "v1.33.0-sandbox"


@dataclass(frozen=True)
class Capacity:
    """What a node advertises to the scheduler. Requests only count for scheduling: the
    processes of every node share the host's CPUs and memory."""

    cpu: str
    memory_ki: int


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def node_info(name: str) -> Obj:
    """`status.nodeInfo` with every field kube's NodeSystemInfo requires: the host's kernel
    and boot id, a machine id and system UUID of this node (stable per host and name)."""
    host = _read("/etc/machine-id") or uuid.getnode().to_bytes(6, "big").hex()
    node = uuid.uuid5(uuid.NAMESPACE_OID, f"{host}/{name}")
    return {
        "machineID": node.hex,
        "systemUUID": str(node),
        "bootID": _read("/proc/sys/kernel/random/boot_id") or str(uuid.uuid4()),
        "kernelVersion": os.uname().release,
        "osImage": "kubesandbox",
        "containerRuntimeVersion": "sandbox://0.1",
        "kubeletVersion": KUBELET_VERSION,
        "kubeProxyVersion": "",  # deprecated (KEP-4004): kubelets leave it empty
        "operatingSystem": "linux",
        "architecture": "amd64",
    }


def node_object(
    name: str, gpus: int, labels: Mapping[str, str], taints: list[Obj], capacity: Capacity
) -> Obj:
    """A Ready Node with cpu, memory, pods and `nvidia.com/gpu` capacity."""
    resources = {
        "cpu": capacity.cpu,
        "memory": f"{capacity.memory_ki}Ki",
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
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": node_info(name),
        },
    }


class RunningPod(Protocol):
    """A pod whose processes a node runs: what exec, attach and port-forward reach."""

    async def exec(
        self, name: str, command: Sequence[str], stdin: bool, tty: Terminal | None
    ) -> Session:
        """Run `command` in container `name` (on a terminal of that size with `tty`)."""

    def attach(self, name: str) -> Session:
        """Follow container `name`."""

    async def connect(self, port: int) -> Connection:
        """Connect to the pod's `port`."""


class NodeAgent(abc.ABC):
    """Runs the pods bound to its nodes: the seam between the API and a kubelet."""

    @abc.abstractmethod
    def nodes(self) -> list[Obj]:
        """The Node objects this agent registers."""

    @abc.abstractmethod
    async def sync_pod(self, api: KubeletAccess, pod: Obj) -> None:
        """React to a pod on one of its nodes being added or changed."""

    @abc.abstractmethod
    async def remove_pod(self, api: KubeletAccess, pod: Obj) -> None:
        """React to a pod on one of its nodes being removed from the API."""

    def terminates_gracefully(self) -> bool:
        """Whether deleting its pods waits for the agent (which then deletes with grace 0)."""
        return False

    @abc.abstractmethod
    async def kill(self, api: KubeletAccess, pod: Obj, children_only: bool) -> int:
        """SIGKILL the pod's processes (with `children_only`, not the containers' own
        processes); how many were killed."""

    @abc.abstractmethod
    async def evict(self, api: KubeletAccess, pod: Obj, message: str) -> None:
        """Stop the pod at once and report it Failed with reason Evicted."""

    def running(self, pod: Obj) -> RunningPod | None:
        """The pod's processes, for exec, attach and port-forward (None: it has none)."""
        return None

    async def close(self) -> None:  # noqa: B027 - optional hook, nothing to stop by default
        """Stop everything the agent started (the sandbox is stopping)."""
