"""kopf handlers of BigModelJob (thin): an index of node pods by job, one daemon per job
that applies `decisions.decide` whenever its pods change, and at least every second, and
while the job is Running a second daemon that collects its telemetry (`telemetry`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import kopf

from bigmodel.api import GROUP, VERSION, JobPhase
from bigmodel.controller.context import context
from bigmodel.controller.job.pods import NodePod, observe_pod
from bigmodel.controller.job.reconciler import JobReconciler
from bigmodel.controller.job.telemetry import job_round
from bigmodel.controller.job.timing import Timing
from bigmodel.controller.k8s import ApiError
from bigmodel.controller.telemetry import TelemetryRounds
from bigmodel.manifests.job import LABEL_JOB
from bigmodel.manifests.pods import MANAGER
from bigmodel.telemetry.export import JOB

PLURAL = "bigmodeljobs"
ERROR_PAUSE = 5.0


@dataclass
class JobControllerState:
    """The job controller's own state, kept in kopf's memo."""

    timing: Timing
    wakeups: dict[str, asyncio.Event] = field(default_factory=dict)
    """Set by the pod index when a pod of the job (by uid) changes."""


def _jobs(memo: Any) -> JobControllerState:
    state: JobControllerState = memo.jobs
    return state


@kopf.on.startup()
async def start(memo: Any, **_: Any) -> None:
    """Read the job timers (`BIGMODEL_RESTART_BACKOFF`, ...)."""
    memo.jobs = JobControllerState(Timing.from_env(os.environ))


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
    wakeup = _jobs(memo).wakeups.get(uid)
    if wakeup is not None:
        wakeup.set()
    return {uid: pod}


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=10)
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
    shared, jobs, index = context(memo), _jobs(memo), kwargs["job_pods"]
    reconciler = JobReconciler(shared.kube, jobs.timing, body, logger, shared.metrics)
    wakeup = jobs.wakeups.setdefault(uid, asyncio.Event())
    beat = f"BigModelJob/{uid}"
    try:
        while not stopped:
            wakeup.clear()
            try:
                with shared.metrics.reconciling(JOB):
                    pause = await reconciler.step(list(index.get(uid, ())))
            except (ApiError, aiohttp.ClientError, TimeoutError) as exc:
                logger.warning("reconcile failed, retrying in %gs: %s", ERROR_PAUSE, exc)
                pause = ERROR_PAUSE
            shared.heartbeats.beat(beat)
            if pause is None:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wakeup.wait(), pause)
    finally:
        jobs.wakeups.pop(uid, None)
        shared.heartbeats.forget(beat)
        meta = body["metadata"]
        shared.metrics.set_phase(meta["namespace"], JOB, meta["name"], None)


def _running(status: kopf.Status, **_: Any) -> bool:
    """The telemetry daemon's filter: kopf starts it when true, stops it when false."""
    return bool(status.get("phase") == JobPhase.RUNNING.value)


@kopf.daemon(GROUP, VERSION, PLURAL, id="telemetry", when=_running, cancellation_timeout=10)
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
    shared, index = context(memo), kwargs["job_pods"]
    telemetry = TelemetryRounds(
        shared.kube, shared.scraper, body, shared.telemetry_interval, logger, shared.metrics, "node"
    )
    pause = shared.telemetry_interval  # the first round too: give the trainer time to start
    try:
        while not stopped:
            await stopped.wait(pause)
            if stopped:
                break
            began = time.monotonic()
            await job_round(telemetry, list(index.get(uid, ())))
            pause = max(0.0, shared.telemetry_interval - (time.monotonic() - began))
    finally:
        telemetry.forget()
