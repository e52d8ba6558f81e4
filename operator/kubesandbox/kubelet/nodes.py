"""Nodes and the agents that run their pods: the seam between the API and a kubelet.

`NodeAgent` is the interface: the process kubelet (`agent.ProcessAgent`) and the simulated
nodes (`simulated.SimulatedAgent`) implement it; `nodehost.NodeHost` registers their nodes,
schedules pods onto them and hands every pod change to the agent of its node.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Mapping

from kubesandbox.access import KubeletAccess
from kubesandbox.objects import Obj, now

GPU = "nvidia.com/gpu"
FINISHED = ("Succeeded", "Failed")  # the phases of a pod that runs no more


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

    async def close(self) -> None:  # noqa: B027 - optional hook, nothing to stop by default
        """Stop everything the agent started (the sandbox is stopping)."""
