"""The largest GPU node, as new jobs check it: one node list shared by the jobs that ask at
about the same time, listed again when a job would fail for want of a bigger node."""

from __future__ import annotations

import asyncio
from typing import Any

from bigmodel.controller.job.nodes import LargestGpuNode
from bigmodel.controller.k8s import ApiError


class Nodes:
    """Stands in for the API client: answers GET /api/v1/nodes, counting the lists."""

    def __init__(self, *gpus: int, refuse: bool = False) -> None:
        self.gpus, self.refuse, self.lists = list(gpus), refuse, 0

    async def request(
        self, method: str, path: str, expected: tuple[int, ...] = ()
    ) -> dict[str, Any]:
        assert (method, path, expected) == ("GET", "/api/v1/nodes", (403,))
        self.lists += 1
        await asyncio.sleep(0.01)
        if self.refuse:
            raise ApiError(403, "nodes is forbidden")
        items = [{"status": {"allocatable": {"nvidia.com/gpu": str(g)}}} for g in self.gpus]
        return {"items": items}


async def test_jobs_asking_at_once_share_one_node_list() -> None:
    kube, largest = Nodes(2, 8, 4), LargestGpuNode()
    found = await asyncio.gather(*(largest.get(kube) for _ in range(50)))
    assert found == [8] * 50
    assert await largest.get(kube) == 8
    assert kube.lists == 1


async def test_a_fresh_look_lists_the_nodes_again() -> None:
    kube, largest = Nodes(4), LargestGpuNode()
    assert await largest.get(kube) == 4
    kube.gpus = [16]
    assert await largest.get(kube, fresh=True) == 16
    assert kube.lists == 2


async def test_no_permission_to_list_nodes_reads_as_no_gpu_node() -> None:
    assert await LargestGpuNode().get(Nodes(refuse=True)) == 0
