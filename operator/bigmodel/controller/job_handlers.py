"""kopf handlers of BigModelJob (thin): an index of node pods by job, one daemon per job
that applies `job_decisions.decide` whenever its pods change, and at least every second, and
while the job is Running a second daemon that collects its telemetry (`telemetry_loop`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import aiohttp
import kopf

from bigmodel.api import (
    GROUP,
    VERSION,
    BigModelJob,
    BigModelJobStatus,
    InvalidResourceError,
    JobPhase,
    parse_resource,
)
from bigmodel.api.core import GPU_RESOURCE
from bigmodel.controller.config import Timing
from bigmodel.controller.job_decisions import (
    INVALID,
    Plan,
    Problem,
    cluster_problems,
    decide,
)
from bigmodel.controller.k8s import ApiError, Kube, load_configuration, object_path
from bigmodel.controller.pods import NodePod, observe_pod
from bigmodel.controller.telemetry_loop import JobTelemetry, interval_from_env
from bigmodel.manifests.job import (
    LABEL_JOB,
    MANAGER,
    POD_GROUP_API,
    build_node_pod,
    build_pod_group,
    build_service,
)
from bigmodel.telemetry.collect import new_session
from bigmodel.telemetry.export import JOB, TelemetryMetrics, default_metrics

FIELD_MANAGER = "bigmodel-job-controller"
OWN_CONDITIONS = (
    "Created",
    "Running",
    "Restarting",
    "Suspended",
    "Succeeded",
    "Failed",
    "Degraded",
    "SpecApplied",
)
"""Condition types this controller writes (telemetry writes its own)."""
STALE_SECONDS = 60.0
"""A job daemon that has not looked at its job for this long is stuck: /healthz fails."""
ERROR_PAUSE = 5.0


@dataclass
class Shared:
    """Operator-wide state of the job controller, kept in kopf's memo."""

    kube: Kube
    timing: Timing
    scraper: aiohttp.ClientSession
    """Scrapes every job's pods (one connection pool for the operator)."""
    telemetry_interval: float
    metrics: TelemetryMetrics
    wakeups: dict[str, asyncio.Event] = field(default_factory=dict)
    ticks: dict[str, float] = field(default_factory=dict)


def _shared(memo: Any) -> Shared:
    shared: Shared = memo.job_controller
    return shared


@kopf.on.startup()
async def start(memo: Any, **_: Any) -> None:
    """Connect to the cluster and read the timers (`BIGMODEL_RESTART_BACKOFF`, ...,
    `BIGMODEL_TELEMETRY_INTERVAL`)."""
    memo.job_controller = Shared(
        Kube(load_configuration()),
        Timing.from_env(os.environ),
        new_session(),
        interval_from_env(os.environ),
        default_metrics(),
    )


@kopf.on.cleanup()
async def stop(memo: Any, **_: Any) -> None:
    """Close the client sessions."""
    shared = _shared(memo)
    await shared.kube.close()
    await shared.scraper.close()


@kopf.on.probe(id="jobDaemons")
async def daemons_alive(memo: Any, **_: Any) -> int:
    """Fail /healthz when the API is unreachable or a job daemon is stuck; else count them."""
    shared = _shared(memo)
    await shared.kube.request("GET", "/version")
    now = time.monotonic()
    stuck = [uid for uid, tick in shared.ticks.items() if now - tick > STALE_SECONDS]
    if stuck:
        raise kopf.PermanentError(f"job daemons stuck for over {STALE_SECONDS:g}s: {stuck}")
    return len(shared.ticks)


def controller_uid(body: Mapping[str, Any]) -> str | None:
    """uid of the BigModelJob that controls a pod, or None."""
    for ref in body.get("metadata", {}).get("ownerReferences") or ():
        if ref.get("controller") and ref.get("kind") == "BigModelJob":
            return str(ref.get("uid"))
    return None


@kopf.index("pods", labels={LABEL_JOB: kopf.PRESENT, "app.kubernetes.io/managed-by": MANAGER})
async def job_pods(body: kopf.Body, memo: Any, **_: Any) -> dict[str, NodePod] | None:
    """Node pods by the uid of their job; a change wakes the job's daemon."""
    uid, pod = controller_uid(body), observe_pod(body)
    if uid is None or pod is None:
        return None
    wakeup = _shared(memo).wakeups.get(uid)
    if wakeup is not None:
        wakeup.set()
    return {uid: pod}


@kopf.daemon(GROUP, VERSION, "bigmodeljobs", cancellation_timeout=10)
async def job_daemon(
    *,
    body: kopf.Body,
    uid: str,
    memo: Any,
    stopped: kopf.DaemonStopped,
    logger: logging.Logger | logging.LoggerAdapter[Any],
    **kwargs: Any,
) -> None:
    """Look at the job whenever its pods change (at least every second) until it is gone."""
    shared, index = _shared(memo), kwargs["job_pods"]
    reconciler = JobReconciler(shared.kube, shared.timing, body, logger, shared.metrics)
    wakeup = shared.wakeups.setdefault(uid, asyncio.Event())
    try:
        while not stopped:
            wakeup.clear()
            try:
                with shared.metrics.reconciling(JOB):
                    pause = await reconciler.step(list(index.get(uid, ())))
            except (ApiError, aiohttp.ClientError, TimeoutError) as exc:
                logger.warning("reconcile failed, retrying in %gs: %s", ERROR_PAUSE, exc)
                pause = ERROR_PAUSE
            shared.ticks[uid] = time.monotonic()
            if pause is None:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wakeup.wait(), pause)
    finally:
        shared.wakeups.pop(uid, None)
        shared.ticks.pop(uid, None)
        meta = body["metadata"]
        shared.metrics.set_phase(meta["namespace"], JOB, meta["name"], None)


def _running(status: kopf.Status, **_: Any) -> bool:
    """The telemetry daemon's filter: kopf starts it when true, stops it when false."""
    return bool(status.get("phase") == JobPhase.RUNNING.value)


@kopf.daemon(GROUP, VERSION, "bigmodeljobs", id="telemetry", when=_running, cancellation_timeout=10)
async def job_telemetry(
    *,
    body: kopf.Body,
    uid: str,
    memo: Any,
    stopped: kopf.DaemonStopped,
    logger: logging.Logger | logging.LoggerAdapter[Any],
    **kwargs: Any,
) -> None:
    """While the job is Running (kopf stops this daemon otherwise): one collection round of
    its node pods per telemetry interval; its series are dropped when it stops."""
    shared, index = _shared(memo), kwargs["job_pods"]
    telemetry = JobTelemetry(
        shared.kube, shared.scraper, body, shared.telemetry_interval, logger, shared.metrics
    )
    pause = shared.telemetry_interval  # the first round too: give the trainer time to start
    try:
        while not stopped:
            await stopped.wait(pause)
            if stopped:
                break
            began = time.monotonic()
            await telemetry.safe_step(list(index.get(uid, ())))
            pause = max(0.0, shared.telemetry_interval - (time.monotonic() - began))
    finally:
        telemetry.forget()


def status_body(status: BigModelJobStatus) -> dict[str, Any]:
    """The status fields this controller owns, as JSON (telemetry writes the rest)."""
    owned = status.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"telemetry"})
    owned["conditions"] = [c for c in owned["conditions"] if c["type"] in OWN_CONDITIONS]
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
            kopf.event(self.body, type="Warning", reason=INVALID, message=str(exc)[:1024])

    async def _cluster_problems(self, job: BigModelJob) -> list[Problem]:
        """Ask the cluster whether it can ever run the job (largest GPU node, gang API)."""
        try:
            nodes = await self.kube.request("GET", "/api/v1/nodes")
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
                    "apiVersion": f"{GROUP}/{VERSION}",
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
            await self.kube.delete(object_path(self.body), self.body["metadata"]["uid"], True)

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
        namespace = self.body["metadata"]["namespace"]
        await self.kube.delete(f"/api/v1/namespaces/{namespace}/pods/{pod.name}", pod.uid)
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
            self.problems.append(Problem(INVALID, f"{name}: {exc.message}"))
