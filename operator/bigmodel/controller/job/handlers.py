"""kopf handlers of BigModelJob (thin): an index of node pods by job, one daemon per job that
applies `decisions.decide` when something it depends on changes, and while the job is Running
with metrics enabled a second daemon that collects its telemetry (`telemetry`).

The job daemon sleeps until it is woken: by a change of one of its pods (the index), by a new
generation of the job (a spec change), by the plan's next timer (back-off, deadline, TTL,
grace), or at the latest after `Timing.resync`, a safety net. An idle job costs nothing. A
change is looked at `Timing.settle` seconds later, with the changes that came meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf

from bigmodel.api import GROUP, VERSION, JobPhase
from bigmodel.controller.context import context, removed, woken
from bigmodel.controller.job.nodes import LargestGpuNode
from bigmodel.controller.job.pods import NodePod, observe_pod
from bigmodel.controller.job.reconciler import JobReconciler
from bigmodel.controller.job.telemetry import job_round
from bigmodel.controller.job.timing import Timing
from bigmodel.controller.k8s import API_FAILURES, RETRY_SECONDS
from bigmodel.controller.telemetry import TelemetryRounds
from bigmodel.manifests.frameworks import Member
from bigmodel.manifests.job import LABEL_JOB
from bigmodel.manifests.pods import MANAGER
from bigmodel.telemetry.export import JOB

PLURAL = "bigmodeljobs"
NODE_PODS: Mapping[str, Any] = {LABEL_JOB: kopf.PRESENT, "app.kubernetes.io/managed-by": MANAGER}


@dataclass
class Wakeup:
    """What wakes one job's daemon before its next timer."""

    event: asyncio.Event = field(default_factory=asyncio.Event)
    generation: int | None = None
    """The job's generation at the daemon's last look: only a newer one wakes it (not the
    daemon's own status writes coming back from the watch)."""
    removed: dict[Member, str | None] = field(default_factory=dict)
    """Ranks whose pods left the cluster since the daemon's last look, with the disruption
    their last state showed (why the cluster stopped them; None: none)."""


@dataclass
class JobControllerState:
    """The job controller's own state, kept in kopf's memo."""

    timing: Timing
    nodes: LargestGpuNode = field(default_factory=LargestGpuNode)
    wakeups: dict[str, Wakeup] = field(default_factory=dict)
    """By job uid: set by the pod index when a pod of the job changes, and by
    `job_generations` when the job's spec does."""


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


@kopf.index("pods", labels=NODE_PODS)
async def job_pods(body: kopf.Body, memo: Any, **_: Any) -> dict[str, NodePod] | None:
    """Node pods by the uid of their job; a change wakes the job's daemon (their removal:
    `job_pod_removed`)."""
    uid, pod = controller_uid(body), observe_pod(body)
    if uid is None or pod is None:
        return None
    wakeup = _jobs(memo).wakeups.get(uid)
    if wakeup is not None:
        wakeup.event.set()
    return {uid: pod}


@kopf.on.event("pods", labels=NODE_PODS, when=removed)
async def job_pod_removed(body: kopf.Body, memo: Any, **_: Any) -> None:
    """A node pod gone from the cluster wakes its job's daemon (kopf drops it from the pod
    index without calling `job_pods`), telling why the cluster stopped it: a watch may bring
    its deletion before the job has looked at its last state."""
    uid, pod = controller_uid(body), observe_pod(body)
    wakeup = _jobs(memo).wakeups.get(uid) if uid else None
    if wakeup is not None and pod is not None:
        wakeup.removed[pod.member] = pod.disruption
        wakeup.event.set()


@kopf.index(GROUP, VERSION, PLURAL)
async def job_generations(uid: str, body: kopf.Body, memo: Any, **_: Any) -> None:
    """A new generation of a job (its spec changed) wakes its daemon at once. An index
    handler indexes nothing here: kopf calls it on every event of a job without logging
    each call, as it logs every call of an event handler (one line per status write). The
    health checks learn which of the operator's own writes the watch has delivered."""
    context(memo).health.watches.delivered(uid, body["metadata"].get("resourceVersion"))
    wakeup = _jobs(memo).wakeups.get(uid)
    if wakeup is not None and body["metadata"].get("generation") != wakeup.generation:
        wakeup.event.set()


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
    """Look at the job whenever something it depends on changes, until it is gone."""
    shared, jobs, index = context(memo), _jobs(memo), kwargs["job_pods"]
    reconciler = JobReconciler(shared.kube, jobs.timing, jobs.nodes, body, logger, shared.metrics)
    wakeup = jobs.wakeups.setdefault(uid, Wakeup())
    beat = f"BigModelJob/{uid}"
    shared.health.watches.track(uid)
    try:
        while not stopped:
            wakeup.event.clear()
            wakeup.generation = body["metadata"].get("generation")
            removed, wakeup.removed = wakeup.removed, {}
            try:
                with shared.metrics.reconciling(JOB):
                    pause = await reconciler.step(list(index.get(uid, ())), removed)
            except API_FAILURES as exc:
                logger.warning("reconcile failed, retrying in %gs: %s", RETRY_SECONDS, exc)
                pause = RETRY_SECONDS
            if pause is None:
                return
            shared.health.heartbeats.beat(beat, pause + jobs.timing.settle)
            if await woken(wakeup.event, pause):  # else a timer is due: look now
                await asyncio.sleep(jobs.timing.settle)
    finally:
        jobs.wakeups.pop(uid, None)
        shared.health.heartbeats.forget(beat)
        shared.health.watches.forget(uid)
        meta = body["metadata"]
        shared.metrics.set_phase(meta["namespace"], JOB, meta["name"], None)


def _collecting(spec: kopf.Spec, status: kopf.Status, **_: Any) -> bool:
    """The telemetry daemon's filter (kopf starts it when true, stops it when false): the job
    is Running and its node pods expose metrics (`spec.metrics.enabled`)."""
    enabled = (spec.get("metrics") or {}).get("enabled", True)
    return bool(status.get("phase") == JobPhase.RUNNING.value and enabled)


@kopf.daemon(GROUP, VERSION, PLURAL, id="telemetry", when=_collecting, cancellation_timeout=10)
async def job_telemetry(
    *,
    body: kopf.Body,
    uid: str,
    memo: Any,
    stopped: kopf.DaemonStopped,
    logger: logging.Logger | logging.LoggerAdapter[Any],
    **kwargs: Any,
) -> None:
    """While the job is Running with metrics (kopf stops this daemon otherwise): one
    collection round of its node pods per telemetry interval; its series are dropped when it
    stops."""
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
