"""One BigModelJob's I/O (observe, decide, apply), used by its daemon in `handlers`."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import kopf

from bigmodel.api import (
    API_VERSION,
    JOB_CONDITIONS,
    BigModelJob,
    BigModelJobStatus,
    InvalidResourceError,
    JobPhase,
    Reason,
    parse_resource,
)
from bigmodel.api.core import GPU_RESOURCE
from bigmodel.controller.job.decisions import cluster_problems, decide
from bigmodel.controller.job.plan import Plan, Problem
from bigmodel.controller.job.pods import NodePod
from bigmodel.controller.job.timing import Timing
from bigmodel.controller.job.vanished import VanishedPods
from bigmodel.controller.k8s import ApiError, Kube
from bigmodel.manifests.job import POD_GROUP_API, build_node_pod, build_pod_group, build_service
from bigmodel.telemetry.export import JOB, TelemetryMetrics, default_metrics

FIELD_MANAGER = "bigmodel-job-controller"


def status_body(status: BigModelJobStatus) -> dict[str, Any]:
    """The status fields this controller owns, as JSON (telemetry writes the rest)."""
    owned = status.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"telemetry"})
    owned["conditions"] = [c for c in owned["conditions"] if c["type"] in JOB_CONDITIONS]
    return owned


class JobReconciler:
    """One job's I/O: observe, decide, apply; remembers its own writes until watched."""

    def __init__(
        self,
        kube: Kube,
        timing: Timing,
        body: kopf.Body,
        logger: logging.Logger | logging.LoggerAdapter[Any],
        metrics: TelemetryMetrics | None = None,
    ) -> None:
        self.kube, self.timing, self.body, self.logger = kube, timing, body, logger
        self.metrics = metrics or default_metrics()
        self.status: BigModelJobStatus | None = None
        """The status last written: newer than the body's until the watch delivers it."""
        self.deleted: set[str] = set()
        """uids of pods deleted by this daemon, whose deletion the index may not show yet."""
        self.problems: list[Problem] = []
        """Children the API refused as invalid."""
        self.invalid_body = False
        meta = body["metadata"]
        self.vanished = VanishedPods(kube, meta["namespace"], meta["name"])

    async def step(self, observed: Sequence[NodePod]) -> float | None:
        """One look at the job; returns seconds until the next, None once it is deleted."""
        try:
            job = parse_resource(BigModelJob, self.body)
        except InvalidResourceError as exc:
            self._report_invalid(exc)
            return self.timing.resync * 60
        if self.status is not None:
            job.status = self.status
        self.deleted &= {p.uid for p in observed}
        pods = [replace(p, deleting=True) if p.uid in self.deleted else p for p in observed]
        pods = await self.vanished.drop(pods)
        problems = list(self.problems)
        if job.status.phase is None and not pods:
            problems += await self._cluster_problems(job)
        plan = decide(job, pods, datetime.now(UTC), self.timing, problems)
        await self._apply(job, plan)
        if plan.delete_job:
            return None
        return min(plan.wake_in if plan.wake_in is not None else math.inf, self.timing.resync)

    def _report_invalid(self, exc: InvalidResourceError) -> None:
        """A body the models refuse (an older CRD): one event, no retry loop."""
        if not self.invalid_body:
            self.invalid_body = True
            self.logger.error("invalid job: %s", exc)
            kopf.event(self.body, type="Warning", reason=Reason.INVALID, message=str(exc)[:1024])

    async def _cluster_problems(self, job: BigModelJob) -> list[Problem]:
        """Ask the cluster whether it can ever run the job (largest GPU node, gang API)."""
        try:
            nodes = await self.kube.request("GET", "/api/v1/nodes", expected=(403,))
        except ApiError as exc:  # no permission to list nodes: skip the check
            self.logger.info("cannot list nodes (%s): GPU count not checked", exc)
            nodes = {}
        gpus = [
            int(n.get("status", {}).get("allocatable", {}).get(GPU_RESOURCE, "0") or 0)
            for n in nodes.get("items", ())
        ]
        gang = job.spec.gang_scheduling
        served = None
        if gang is not None:
            served = await self.kube.served(POD_GROUP_API[gang.scheduler], "podgroups")
        return cluster_problems(job, max(gpus, default=0), served)

    async def _apply(self, job: BigModelJob, plan: Plan) -> None:
        """Write the status first (a restart is counted before its pods go), then events,
        deletions and creations."""
        new = status_body(plan.status)
        if new != status_body(job.status):
            meta = self.body["metadata"]
            await self.kube.apply_status(
                {
                    "apiVersion": API_VERSION,
                    "kind": "BigModelJob",
                    "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
                    "status": new,
                },
                FIELD_MANAGER,
            )
        self.status = plan.status
        self._count(job.status, plan.status)
        for event in plan.events:
            kopf.event(self.body, type=event.type, reason=event.reason, message=event.message)
        await asyncio.gather(*(self._delete_pod(p) for p in plan.delete))
        if plan.create:
            await self._create(job, plan.create)
        if plan.delete_job:
            await self.kube.delete(self.body, self.body["metadata"]["uid"], background=True)

    def _count(self, old: BigModelJobStatus, new: BigModelJobStatus) -> None:
        """Export the phase, and count restarts and failure once per transition."""
        namespace, name = self.body["metadata"]["namespace"], self.body["metadata"]["name"]
        if new.phase is not None:
            self.metrics.set_phase(namespace, JOB, name, new.phase.value)
        for _ in range(new.restarts - old.restarts):
            self.metrics.count_restart(namespace)
        if new.phase is JobPhase.FAILED and old.phase is not JobPhase.FAILED:
            self.metrics.count_failure(namespace)

    async def _delete_pod(self, pod: NodePod) -> None:
        meta = {"name": pod.name, "namespace": self.body["metadata"]["namespace"]}
        await self.kube.delete({"apiVersion": "v1", "kind": "Pod", "metadata": meta}, pod.uid)
        self.deleted.add(pod.uid)

    async def _create(self, job: BigModelJob, ranks: Sequence[int]) -> None:
        """Create the Service and PodGroup, then the node pods, all owned by the job and
        each only if absent."""
        group = build_pod_group(job)
        first = [build_service(job), *([group] if group else [])]
        await asyncio.gather(*(self._create_child(c) for c in first))
        await asyncio.gather(*(self._create_child(build_node_pod(job, r)) for r in ranks))

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
