"""The BigModelService controller on the shared work queue: `reconcile(key)` looks at one
service from the caches (its body; its Deployment, Service and replica pods by service)
and, once per telemetry interval, measures its replicas first (and autoscales).
Per-service state lives here, by key, while the service does."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import kopf

from bigmodel.api import SERVICE_KIND
from bigmodel.controller.caches import Feed
from bigmodel.controller.context import OperatorContext
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
from bigmodel.controller.service.decisions import Seen
from bigmodel.controller.service.reconciler import ServiceReconciler
from bigmodel.controller.service.replicas import (
    ChildView,
    ReplicaPod,
    observe_child,
    observe_replica,
)
from bigmodel.controller.telemetry import TelemetryRounds
from bigmodel.controller.workers import Controller
from bigmodel.manifests.service import LABEL_SERVICE, RuntimeImages

QUEUE = "bigmodelservice"
"""Longest pause between two looks at a service when nothing changes."""
V = TypeVar("V")


def service_of(body: Mapping[str, Any]) -> str:
    """The key of the service whose child `body` is (its `bigmodel.dev/service` label)."""
    meta = body.get("metadata") or {}
    return object_key(meta.get("namespace"), (meta.get("labels") or {}).get(LABEL_SERVICE))


@dataclass
class Children:
    """The caches of the services' children, by `namespace/service`."""

    deployments: Grouped[ChildView] = field(default_factory=Grouped)
    fronts: Grouped[ChildView] = field(default_factory=Grouped)
    pods: Grouped[ReplicaPod] = field(default_factory=Grouped)

    def seen(self, key: str) -> Seen:
        """What the caches show of the service `key`'s children."""
        deployment = next(iter(self.deployments.of(key)), None)
        front = next(iter(self.fronts.of(key)), None)
        return Seen(deployment, front, self.pods.of(key))


@dataclass
class Watched:
    """One service's state between looks."""

    reconciler: ServiceReconciler
    measured: float = field(default_factory=time.monotonic)
    """When its replicas were last measured (the first round one interval in: let them
    start)."""


@dataclass
class ServiceController:
    """The services' cache, per-service state and queue."""

    shared: OperatorContext
    images: RuntimeImages
    queue_metrics: WorkQueueMetrics
    workers: int
    resync: float
    """Longest pause between two looks at a service (`BIGMODEL_SERVICE_RESYNC`)."""
    services: Bodies = field(default_factory=Bodies)
    children: Children = field(default_factory=Children)
    watched: dict[str, Watched] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.release = Release(self.shared.kube)
        self.controller = Controller(QUEUE, self.reconcile, self.workers, self.queue_metrics)
        self.deployment_event = self._feed(self.children.deployments, observe_child)
        self.front_event = self._feed(self.children.fronts, observe_child)
        self.pod_event = self._feed(self.children.pods, observe_replica)

    def service_changed(self, event_type: str | None, raw: Mapping[str, Any]) -> None:
        """A watch event of a service (its spec, a scale, its status): cache it, look now."""
        key = self.services.observe(event_type, raw)
        meta = raw.get("metadata") or {}
        self.shared.health.watches.delivered(uid_of(raw), meta.get("resourceVersion"))
        self.controller.queue.add(key)

    def _feed(self, cache: Grouped[V], observe: Callable[[Mapping[str, Any]], V]) -> Feed:
        """What takes the watch events of one kind of child into `cache` (what `observe`
        makes of each) and queues its service: a child that changed or left the cluster
        means a look now."""

        def take(event_type: str | None, raw: Mapping[str, Any]) -> None:
            key = service_of(raw)
            if event_type == "DELETED":
                cache.drop(key_of(raw))
            else:
                cache.put(key_of(raw), key, observe(raw))
            self.controller.queue.add(key)

        return take

    async def reconcile(self, key: str) -> float | None:
        """One look at the service `key` (after a telemetry round when one is due);
        seconds until the next, None once it is gone or being deleted."""
        raw = self.services.get(key)
        if raw is None or deleting(raw):
            self._forget(key)
            if raw is not None:
                await self.release(raw)
            return None
        watched = self._watched(key, raw)
        await self.release(raw)
        reconciler, interval = watched.reconciler, self.shared.telemetry_interval
        reconciler.body = reconciler.rounds.body = raw
        with self.shared.metrics.reconciling(SERVICE_KIND):
            if time.monotonic() - watched.measured >= interval:
                watched.measured = time.monotonic()
                await reconciler.measure(self.children.seen(key))
            await reconciler.step(self.children.seen(key))
        due = interval - (time.monotonic() - watched.measured)
        return max(0.0, min(self.resync, due))

    def _watched(self, key: str, raw: kopf.Body) -> Watched:
        """The service's state (new for a new service, or another of the same name)."""
        watched = self.watched.get(key)
        if watched is not None and uid_of(watched.reconciler.body) != uid_of(raw):
            self._forget(key)
            watched = None
        if watched is None:
            shared, body, logger = self.shared, raw, object_logger("service", key)
            rounds = TelemetryRounds(
                shared.kube, shared.scraper, body, shared.telemetry_interval, logger,
                shared.metrics, "replica",
            )  # fmt: skip
            reconciler = ServiceReconciler(
                shared.kube, body, logger, self.images, shared.metrics, rounds
            )
            watched = self.watched[key] = Watched(reconciler)
            shared.health.watches.track(uid_of(raw))
        return watched

    def _forget(self, key: str) -> None:
        """The service is gone (or being deleted): drop its state and its series."""
        watched = self.watched.pop(key, None)
        if watched is None:
            return
        self.shared.health.watches.forget(uid_of(watched.reconciler.body))
        self.release.forget(uid_of(watched.reconciler.body))
        watched.reconciler.rounds.forget()
        namespace, _, name = key.partition("/")
        self.shared.metrics.set_phase(namespace, SERVICE_KIND, name, None)

    @property
    def controllers(self) -> tuple[Controller, ...]:
        """The reconcile queue."""
        return (self.controller,)

    def cached(self) -> list[str]:
        """Every service in the cache."""
        return list(self.services)

    def reset(self) -> None:
        """Drop every service's state (see `workers.Kind`)."""
        for key in list(self.watched):
            self._forget(key)
