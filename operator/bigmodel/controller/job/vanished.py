"""Node pods the pod index still shows after they left the cluster, found and dropped.

kopf's watch resumes after a `410 Gone` or a dropped connection by listing again, and its
index learns nothing of a pod deleted in between: the pod stays in the index, forever
"leaving". A gang restart, which waits for the old gang to be gone, would wait forever
(found by the API fault suite: `tests/integration/test_chaos.py`). So a pod that has been
leaving for longer than LEAVING_CHECK_SECONDS is looked up, with one list of the job's pods
at most that often, and dropped from what the job's decisions see once the API says it is
gone.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

from bigmodel.controller.job.pods import NodePod
from bigmodel.controller.k8s import Kube, resource_path
from bigmodel.manifests.job import LABEL_JOB

LEAVING_CHECK_SECONDS = 10.0
"""Longer than a pod takes to go once its processes stop; shorter than anyone waits."""


class VanishedPods:
    """Remembers since when each node pod of one job has been leaving, and which are gone."""

    def __init__(
        self, kube: Kube, namespace: str, job: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.kube, self.namespace, self.job, self.clock = kube, namespace, job, clock
        self.gone: set[str] = set()
        """uids the API no longer has (the index may still list them)."""
        self._since: dict[str, float] = {}
        self._checked = -math.inf

    async def drop(self, pods: Sequence[NodePod]) -> list[NodePod]:
        """`pods` without those that are gone; a pod leaving too long is looked up."""
        now = self.clock()
        uids = {p.uid for p in pods}
        self.gone &= uids
        self._since = {p.uid: self._since.get(p.uid, now) for p in pods if p.leaving}
        overdue = {
            uid
            for uid, since in self._since.items()
            if now - since >= LEAVING_CHECK_SECONDS and uid not in self.gone
        }
        if overdue and now - self._checked >= LEAVING_CHECK_SECONDS:
            self._checked = now
            self.gone |= overdue - await self._live()
        return [p for p in pods if p.uid not in self.gone]

    def leaving(self, uid: str) -> None:
        """The pod `uid` has just been deleted: it is leaving from now on."""
        self._since.setdefault(uid, self.clock())

    def next_look(self) -> float | None:
        """Seconds until a pod leaving now is due to be looked up (None: none is leaving):
        the job must look again by then, as no watch event may ever come for it."""
        waiting = [since for uid, since in self._since.items() if uid not in self.gone]
        if not waiting:
            return None
        due = max(min(waiting), self._checked) + LEAVING_CHECK_SECONDS
        return max(0.0, due - self.clock())

    async def _live(self) -> set[str]:
        """uids of the job's pods the API has now."""
        path = resource_path("v1", "pods", self.namespace)
        listed = await self.kube.request(
            "GET", path, params={"labelSelector": f"{LABEL_JOB}={self.job}"}
        )
        return {item["metadata"]["uid"] for item in listed.get("items") or ()}
