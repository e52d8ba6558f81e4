"""The BigModelJob controller on the shared work queue: `reconcile(key)` looks at one job from
the caches (its body, its node pods by the job's uid) through the job's `JobReconciler`,
and `measure(key)` runs one telemetry round of a Running job, on a queue of its own so a
reconcile never waits for a scrape. Per-job state lives here, by key (its node pods'
departures by the job's uid), while the job does."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf

from bigmodel.api import JOB_KIND, JobPhase
from bigmodel.controller.context import OperatorContext
from bigmodel.controller.job.departures import Departures
from bigmodel.controller.job.nodes import LargestGpuNode
from bigmodel.controller.job.pods import NodePod, observe_pod
from bigmodel.controller.job.reconciler import JobReconciler
from bigmodel.controller.job.telemetry import job_round
from bigmodel.controller.job.timing import Timing
from bigmodel.controller.legacy import Release
from bigmodel.controller.objects import (
    Bodies,
    Grouped,
    deleting,
    key_of,
    object_key,
    object_logger,
    uid_of,
)
from bigmodel.controller.queuemetrics import WorkQueueMetrics
from bigmodel.controller.telemetry import TelemetryRounds
from bigmodel.controller.workers import Controller
from bigmodel.manifests.frameworks import Member

QUEUE = "bigmodeljob"
TELEMETRY_QUEUE = "bigmodeljob-telemetry"


def controller_of(body: Mapping[str, Any]) -> tuple[str, str] | None:
    """uid and key of the BigModelJob that controls a pod, or None."""
    meta = body.get("metadata", {})
    for ref in meta.get("ownerReferences") or ():
        if ref.get("controller") and ref.get("kind") == JOB_KIND:
            return str(ref.get("uid")), object_key(meta.get("namespace"), ref.get("name"))
    return None


def collecting(body: Mapping[str, Any], phase: str | None) -> bool:
    """Whether the telemetry of the job `body` in `phase` is collected: it is Running and
    its node pods expose metrics (`spec.metrics.enabled`)."""
    enabled = ((body.get("spec") or {}).get("metrics") or {}).get("enabled", True)
    return bool(phase == JobPhase.RUNNING.value and enabled)


@dataclass
class JobController:
    """The jobs' caches, per-job state and the two queues (reconcile, telemetry)."""

    shared: OperatorContext
    timing: Timing
    queue_metrics: WorkQueueMetrics
    workers: int
    telemetry_workers: int
    jobs: Bodies = field(default_factory=Bodies)
    pods: Grouped[NodePod] = field(default_factory=Grouped)
    """Node pods by the uid of their job."""
    nodes: LargestGpuNode = field(default_factory=LargestGpuNode)
    departures: dict[str, Departures] = field(default_factory=dict)
    """By job uid: its node pods leaving or gone, with why the cluster stopped them."""
    reconcilers: dict[str, JobReconciler] = field(default_factory=dict)
    rounds: dict[str, TelemetryRounds] = field(default_factory=dict)
    measured: set[str] = field(default_factory=set)
    """Keys whose telemetry rounds are scheduled."""

    def __post_init__(self) -> None:
        self.release = Release(self.shared.kube)
        self.controller = Controller(QUEUE, self.reconcile, self.workers, self.queue_metrics)
        self.telemetry = Controller(
            TELEMETRY_QUEUE, self.measure, self.telemetry_workers, self.queue_metrics
        )

    # --- what the kopf handlers report ---

    def job_changed(self, event_type: str | None, raw: Mapping[str, Any]) -> None:
        """A watch event of a job: cache it; look at the job when it is new, gone, being
        deleted or has a new generation (not for its own status writes coming back)."""
        key = self.jobs.observe(event_type, raw)
        meta = raw.get("metadata") or {}
        if event_type == "DELETED":  # a standby, which never looks, keeps no trace either
            self.departures.pop(str(meta.get("uid")), None)
        self.shared.health.watches.delivered(str(meta.get("uid")), meta.get("resourceVersion"))
        known = self.reconcilers.get(key)
        if known is None or event_type == "DELETED" or deleting(raw):
            self.controller.queue.add(key)
        elif meta.get("generation") != known.generation or meta.get("uid") != known.uid:
            self.controller.queue.add_after(key, self.timing.settle)

    def pod_event(self, event_type: str | None, raw: Mapping[str, Any]) -> None:
        """A watch event of a node pod: cache it under its job's uid and queue the job (a
        pod gone from the cluster, with why the cluster stopped it: `pod_gone`)."""
        owner, pod = controller_of(raw), observe_pod(raw)
        if event_type == "DELETED" or owner is None or pod is None:
            self.pods.drop(key_of(raw))
            if event_type == "DELETED" and owner is not None and pod is not None:
                self.pod_gone(owner[1], owner[0], pod.member, pod.disruption)
            return
        self.pods.put(key_of(raw), owner[0], pod)
        self.pod_changed(owner[1])

    def pod_changed(self, key: str) -> None:
        """A node pod of the job `key` changed: look `settle` seconds later, with the
        changes of its gang's other pods that come meanwhile."""
        self.controller.queue.add_after(key, self.timing.settle)

    def pod_gone(self, key: str, uid: str, member: Member, reason: str | None) -> None:
        """A node pod of the live job `key` of `uid` is gone, stopped by the cluster for
        `reason` (its disruption): a watch may bring its DELETED event before the job has
        looked at its last state; the pods of a job gone or being deleted do not matter."""
        raw = self.jobs.get(key)
        if raw is None or deleting(raw) or uid_of(raw) != uid:
            return
        self.departures.setdefault(uid, Departures()).went(member, reason)
        self.pod_changed(key)

    # --- the queues' work ---

    async def reconcile(self, key: str) -> float | None:
        """One look at the job `key`; seconds until the next, None when only a change will
        bring one (gone, being deleted)."""
        raw = self.jobs.get(key)
        if raw is None or deleting(raw):
            self._forget(key)
            if raw is not None:
                await self.release(raw)
            return None
        reconciler = self._reconciler(key, raw)
        await self.release(raw)
        with self.shared.metrics.reconciling(JOB_KIND):
            pause = await reconciler.step(self.pods.of(reconciler.uid))
        if pause is not None and self._collecting(key, raw) and key not in self.measured:
            self.measured.add(key)  # the first round too: give the trainer time to start
            self.telemetry.queue.add_after(key, self.shared.telemetry_interval)
        return pause

    async def measure(self, key: str) -> float | None:
        """One telemetry round of the job `key` while it is collected; its series are
        dropped when it stops."""
        raw = self.jobs.get(key)
        live = raw if raw is not None and not deleting(raw) and self._collecting(key, raw) else None
        rounds = self.rounds.get(key)
        if rounds is not None and (live is None or rounds.body["metadata"]["uid"] != uid_of(live)):
            self.rounds.pop(key).forget()  # stopped, gone, or another job of the same name
            rounds = None
        if live is None:
            self.measured.discard(key)
            return None
        if rounds is None:
            shared = self.shared
            logger = object_logger("job", key)
            rounds = TelemetryRounds(
                shared.kube, shared.scraper, live, shared.telemetry_interval, logger,
                shared.metrics, "node",
            )  # fmt: skip
            self.rounds[key] = rounds
        rounds.body = live
        began = time.monotonic()
        if await job_round(rounds, self.pods.of(uid_of(live))):
            self.controller.queue.add_after(key, self.timing.settle)  # its straggler policy
        return max(0.0, self.shared.telemetry_interval - (time.monotonic() - began))

    def _collecting(self, key: str, raw: kopf.Body) -> bool:
        """`collecting`, in the phase this controller last wrote (the cache may not show it
        yet: the watch brings it later, and a status write queues no look)."""
        reconciler = self.reconcilers.get(key)
        written = reconciler.status if reconciler and reconciler.uid == uid_of(raw) else None
        if written is not None:
            phase = written.phase.value if written.phase else None
        else:
            phase = (raw.get("status") or {}).get("phase")
        return collecting(raw, phase)

    def _reconciler(self, key: str, raw: kopf.Body) -> JobReconciler:
        """The job's reconciler (a new one for a new job, or another of the same name)."""
        uid = uid_of(raw)
        reconciler = self.reconcilers.get(key)
        if reconciler is not None and reconciler.uid != uid:
            self._forget(key)
            reconciler = None
        if reconciler is None:
            shared = self.shared
            departures = self.departures.setdefault(uid, Departures())
            reconciler = JobReconciler(
                shared.kube, self.timing, self.nodes, raw, departures, object_logger("job", key),
                shared.metrics,
            )  # fmt: skip
            self.reconcilers[key] = reconciler
            shared.health.watches.track(uid)
        reconciler.body = raw
        return reconciler

    def _forget(self, key: str) -> None:
        """The job is gone (or being deleted): drop its state and its phase's series."""
        reconciler = self.reconcilers.pop(key, None)
        if reconciler is None:
            return
        self.departures.pop(reconciler.uid, None)
        self.release.forget(reconciler.uid)
        self.shared.health.watches.forget(reconciler.uid)
        namespace, _, name = key.partition("/")
        self.shared.metrics.set_phase(namespace, JOB_KIND, name, None)

    @property
    def controllers(self) -> tuple[Controller, ...]:
        """The reconcile queue, then the telemetry queue."""
        return self.controller, self.telemetry

    def cached(self) -> list[str]:
        """Every job in the cache."""
        return list(self.jobs)

    def reset(self) -> None:
        """Drop every job's state and telemetry rounds (see `workers.Kind`)."""
        for key in list(self.reconcilers):
            self._forget(key)
        for rounds in self.rounds.values():
            rounds.forget()
        self.rounds.clear()
        self.measured.clear()
