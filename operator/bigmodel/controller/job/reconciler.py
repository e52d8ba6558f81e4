"""One BigModelJob's I/O (observe, decide, apply), used by the job controller's workers."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import kopf

from bigmodel.api import (
    JOB_CONDITIONS,
    JOB_KIND,
    BigModelJob,
    BigModelJobStatus,
    InvalidResourceError,
    JobPhase,
    Reason,
    parse_resource,
)
from bigmodel.controller.conditions import owned_status, with_observed
from bigmodel.controller.job.decisions import cluster_problems, decide
from bigmodel.controller.job.departures import Departures
from bigmodel.controller.job.nodes import LargestGpuNode
from bigmodel.controller.job.plan import Plan, Problem
from bigmodel.controller.job.pods import NodePod
from bigmodel.controller.job.timing import Timing
from bigmodel.controller.k8s import ApiError, Kube, resource_path
from bigmodel.manifests.frameworks import Member
from bigmodel.manifests.job import (
    LABEL_JOB,
    POD_GROUP_API,
    build_pod,
    build_pod_group,
    build_services,
)
from bigmodel.telemetry.export import OperatorMetrics, default_metrics

FIELD_MANAGER = "bigmodel-job-controller"


class JobReconciler:
    """One job's I/O: observe, decide, apply; remembers its own writes until watched."""

    def __init__(
        self,
        kube: Kube,
        timing: Timing,
        nodes: LargestGpuNode,
        body: kopf.Body,
        departures: Departures,
        logger: logging.Logger | logging.LoggerAdapter[Any],
        metrics: OperatorMetrics | None = None,
    ) -> None:
        self.kube, self.timing, self.nodes, self.body = kube, timing, nodes, body
        self.departures = departures
        """Its node pods leaving or gone (the job controller notes those gone from the watch)."""
        self.logger = logger
        self.metrics = metrics or default_metrics()
        self.status: BigModelJobStatus | None = None
        """The status last written: newer than the body's until the watch delivers it."""
        self.created: dict[Member, float] = {}
        """Members whose pods this controller created (monotonic time) that the cache does not show
        yet: not created again while the operator catches up with the watch (under a burst,
        for many seconds), unless the pod is gone or a resync passes."""
        self.problems: list[Problem] = []
        """Children the API refused as invalid."""
        self.invalid_body = False
        self.generation: int | None = None
        """The job's generation at the latest look: only a newer one needs another."""

    async def step(self, cached: Sequence[NodePod]) -> float | None:
        """One look at the job given its pods in the cache (and its departures); returns
        seconds until the next, None once deleted."""
        self.generation = self.body["metadata"].get("generation")
        try:
            job = parse_resource(BigModelJob, self.body)
        except InvalidResourceError as exc:
            self._report_invalid(exc)  # a new generation is looked at
            return self.timing.resync
        if self.status is not None:
            job.status = with_observed(self.status, job.status, JOB_CONDITIONS)
        departures, now = self.departures, time.monotonic()
        seen = {p.member for p in cached} | departures.look(cached, now)
        self.created = {
            r: t for r, t in self.created.items() if r not in seen and now - t < self.timing.resync
        }
        if due := departures.due(now):
            departures.found(due, await self._listed())
        pods = departures.seen(cached)
        problems, refused = list(self.problems), len(self.problems)
        if job.status.phase is None and not pods:
            problems += await self._cluster_problems(job)
        plan = decide(job, pods, datetime.now(UTC), self.timing, problems, departures.reasons)
        await self._apply(job, plan)
        if plan.delete_job:
            return None
        if len(self.problems) > refused:
            return 0.0  # a child was refused: fail the job now, no event will come
        timers = (plan.wake_in, departures.next_lookup(time.monotonic()), self.timing.resync)
        return min(t for t in timers if t is not None)

    @property
    def uid(self) -> str:
        """The uid of the job."""
        return str(self.body["metadata"]["uid"])

    def _report_invalid(self, exc: InvalidResourceError) -> None:
        """A body the models refuse (an older CRD): one event, no retry loop."""
        if not self.invalid_body:
            self.invalid_body = True
            self.logger.error("invalid job: %s", exc)
            kopf.event(self.body, type="Warning", reason=Reason.INVALID, message=str(exc)[:1024])

    async def _cluster_problems(self, job: BigModelJob) -> list[Problem]:
        """Ask the cluster whether it can ever run the job (largest GPU node, gang API)."""
        largest = await self.nodes.get(self.kube)
        if 0 < largest < job.spec.gpus_per_node:  # too small a while ago: still so?
            largest = await self.nodes.get(self.kube, fresh=True)
        gang = job.spec.gang_scheduling
        served = None
        if gang is not None:
            served = await self.kube.served(POD_GROUP_API[gang.scheduler], "podgroups")
        return cluster_problems(job, largest, served)

    async def _apply(self, job: BigModelJob, plan: Plan) -> None:
        """Write the status first (a restart is counted before its pods go), then events,
        deletions and creations."""
        new = owned_status(plan.status, JOB_CONDITIONS)
        if new != owned_status(job.status, JOB_CONDITIONS):
            await self.kube.apply_status(self.body, new, FIELD_MANAGER)
        self.status = plan.status
        self._count(job.status, plan.status)
        for event in plan.events:
            kopf.event(self.body, type=event.type, reason=event.reason, message=event.message)
        await asyncio.gather(*(self._delete_pod(p) for p in plan.delete))
        members = [m for m in plan.create if m not in self.created]
        if members:  # built with the new status: the machines its pods avoid
            await self._create(job.model_copy(update={"status": plan.status}), members)
            self.created |= dict.fromkeys(members, time.monotonic())
        if plan.delete_job:
            await self.kube.delete(self.body, self.body["metadata"]["uid"], background=True)

    def _count(self, old: BigModelJobStatus, new: BigModelJobStatus) -> None:
        """Export the phase, and count restarts and failure once per transition."""
        namespace, name = self.body["metadata"]["namespace"], self.body["metadata"]["name"]
        if new.phase is not None:
            self.metrics.set_phase(namespace, JOB_KIND, name, new.phase.value)
        for _ in range(new.restarts - old.restarts):
            self.metrics.count_restart(namespace)
        if new.phase is JobPhase.FAILED and old.phase is not JobPhase.FAILED:
            self.metrics.count_failure(namespace)

    async def _delete_pod(self, pod: NodePod) -> None:
        meta = {"name": pod.name, "namespace": self.body["metadata"]["namespace"]}
        await self.kube.delete({"apiVersion": "v1", "kind": "Pod", "metadata": meta}, pod.uid)
        self.departures.requested(pod.uid, time.monotonic())

    async def _listed(self) -> set[str]:
        """uids of the job's pods the API has now (a lookup of those leaving too long)."""
        path = resource_path("v1", "pods", self.body["metadata"]["namespace"])
        selector = f"{LABEL_JOB}={self.body['metadata']['name']}"
        listed = await self.kube.request("GET", path, params={"labelSelector": selector})
        return {item["metadata"]["uid"] for item in listed.get("items") or ()}

    async def _create(self, job: BigModelJob, members: Sequence[Member]) -> None:
        """Create the Services and PodGroup, then the pods, all owned by the job and each
        only if absent."""
        group = build_pod_group(job)
        first = [*build_services(job), *([group] if group else [])]
        await asyncio.gather(*(self._create_child(c) for c in first))
        await asyncio.gather(*(self._create_child(build_pod(job, m)) for m in members))

    async def _create_child(self, child: dict[str, Any]) -> None:
        # append_owner_reference, not adopt: adopt would also copy every label of the job,
        # including kopf's and kubectl's, which the builders filter out.
        kopf.append_owner_reference(child, owner=self.body)
        try:
            await self.kube.create(child)
        except ApiError as exc:
            if exc.status not in (400, 422):
                raise
            name = f"{child['kind']} {child['metadata']['name']}"
            self.problems.append(Problem(Reason.INVALID, f"{name}: {exc.message}"))
