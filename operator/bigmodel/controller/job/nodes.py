"""The most GPUs any node offers, as a new job's first look checks it: one node list shared by
every job that asks at about the same time, instead of one list per job (a burst of 1,000
new jobs would otherwise fetch and decode 1,000 node lists at once)."""

from __future__ import annotations

import asyncio
import logging
import time

from bigmodel.api.core import GPU_RESOURCE
from bigmodel.controller.k8s import ApiError, Kube

MAX_AGE = 10.0
"""Seconds a node list answers for: a job asking later lists the nodes again."""

log = logging.getLogger(__name__)


class LargestGpuNode:
    """`get(kube)`: the largest `nvidia.com/gpu` allocatable of any node (0 without GPU nodes,
    or when the operator may not list nodes), from a list at most `MAX_AGE` seconds old;
    `fresh=True` lists again (before a job fails for want of a node that big)."""

    def __init__(self) -> None:
        self._listed: tuple[float, int] | None = None
        self._listing: asyncio.Task[int] | None = None

    async def get(self, kube: Kube, fresh: bool = False) -> int:
        listed = self._listed
        if listed is not None and not fresh and time.monotonic() - listed[0] < MAX_AGE:
            return listed[1]
        if self._listing is None or self._listing.done():
            self._listing = asyncio.create_task(self._list(kube))
        return await asyncio.shield(self._listing)

    async def _list(self, kube: Kube) -> int:
        began = time.monotonic()
        try:
            nodes = await kube.request("GET", "/api/v1/nodes", expected=(403,))
        except ApiError as exc:  # no permission to list nodes: skip the check
            log.info("cannot list nodes (%s): GPU count not checked", exc)
            nodes = {}
        largest = max(
            (
                int(n.get("status", {}).get("allocatable", {}).get(GPU_RESOURCE, "0") or 0)
                for n in nodes.get("items", ())
            ),
            default=0,
        )
        self._listed = (began, largest)
        return largest
