"""kopf handlers of BigModelService (thin): indexes of its replica pods and of the children
it applied, and one daemon per service that reconciles whenever one of them (or the service
itself) changes, and runs a telemetry round (and the autoscaler) every telemetry interval."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf

from bigmodel.api import GROUP, VERSION
from bigmodel.controller.context import context, removed, woken
from bigmodel.controller.k8s import API_FAILURES, RETRY_SECONDS
from bigmodel.controller.service.decisions import Seen
from bigmodel.controller.service.reconciler import ServiceReconciler
from bigmodel.controller.service.replicas import (
    ChildView,
    ReplicaPod,
    observe_child,
    observe_replica,
)
from bigmodel.controller.telemetry import TelemetryRounds
from bigmodel.manifests.pods import MANAGER
from bigmodel.manifests.service import LABEL_SERVICE, RuntimeImages
from bigmodel.telemetry.export import SERVICE

PLURAL = "bigmodelservices"
CHILDREN: Mapping[str, Any] = {
    LABEL_SERVICE: kopf.PRESENT,
    "app.kubernetes.io/managed-by": MANAGER,
}
RESYNC_SECONDS = 60.0
"""Longest pause between two looks at a service when nothing changes."""
IMAGE_ENV = {"torch": "BIGMODEL_TORCH_IMAGE", "vllm": "BIGMODEL_VLLM_IMAGE"}
"""The operator's settings for the runtimes' default images (the chart sets them)."""


@dataclass
class ServiceControllerState:
    """The service controller's own state, kept in kopf's memo."""

    images: RuntimeImages
    wakeups: dict[str, asyncio.Event] = field(default_factory=dict)
    """By `namespace/name` of a service: set when it or one of its children changes."""


def images_from_env(env: Mapping[str, str]) -> RuntimeImages:
    """The runtimes' default images: `BIGMODEL_TORCH_IMAGE`, `BIGMODEL_VLLM_IMAGE`."""
    defaults = RuntimeImages()
    return RuntimeImages(
        torch=env.get(IMAGE_ENV["torch"]) or defaults.torch,
        vllm=env.get(IMAGE_ENV["vllm"]) or defaults.vllm,
    )


def _services(memo: Any) -> ServiceControllerState:
    state: ServiceControllerState = memo.services
    return state


def _key(namespace: str | None, name: str | None) -> str:
    return f"{namespace}/{name}"


def _wake(memo: Any, key: str) -> None:
    wakeup = _services(memo).wakeups.get(key)
    if wakeup is not None:
        wakeup.set()


@kopf.on.startup()
async def start(memo: Any, **_: Any) -> None:
    """Read the runtimes' default images."""
    memo.services = ServiceControllerState(images_from_env(os.environ))


def _owner(body: Mapping[str, Any]) -> str:
    meta = body.get("metadata") or {}
    return _key(meta.get("namespace"), (meta.get("labels") or {}).get(LABEL_SERVICE))


@kopf.index("pods", labels=CHILDREN)
async def service_pods(body: kopf.Body, memo: Any, **_: Any) -> dict[str, ReplicaPod]:
    """Replica pods by `namespace/service`; a change wakes the service's daemon."""
    key = _owner(body)
    _wake(memo, key)
    return {key: observe_replica(body)}


@kopf.index("apps", "v1", "deployments", labels=CHILDREN)
async def service_deployments(body: kopf.Body, memo: Any, **_: Any) -> dict[str, ChildView]:
    """The Deployment of each service, by `namespace/service`."""
    key = _owner(body)
    _wake(memo, key)
    return {key: observe_child(body)}


@kopf.index("", "v1", "services", labels=CHILDREN)
async def service_fronts(body: kopf.Body, memo: Any, **_: Any) -> dict[str, ChildView]:
    """The ClusterIP Service of each service, by `namespace/service`."""
    key = _owner(body)
    _wake(memo, key)
    return {key: observe_child(body)}


@kopf.on.event("pods", labels=CHILDREN, when=removed)
@kopf.on.event("apps", "v1", "deployments", labels=CHILDREN, when=removed)
@kopf.on.event("", "v1", "services", labels=CHILDREN, when=removed)
async def service_child_removed(body: kopf.Body, memo: Any, **_: Any) -> None:
    """A child gone from the cluster wakes its service's daemon (kopf drops it from the
    indexes above without calling them)."""
    _wake(memo, _owner(body))


@kopf.index(GROUP, VERSION, PLURAL)
async def service_changes(
    namespace: str | None, name: str | None, uid: str, body: kopf.Body, memo: Any, **_: Any
) -> None:
    """Any change of a service (its spec, a scale, its status) wakes its daemon at once. An
    index handler that stores nothing: kopf calls it on every watch event, without the log
    line per call that an event handler gets. The health checks learn which of the
    operator's own writes the watch has delivered."""
    context(memo).health.watches.delivered(uid, body["metadata"].get("resourceVersion"))
    _wake(memo, _key(namespace, name))


def _seen(key: str, kwargs: Mapping[str, Any]) -> Seen:
    def one(index: str) -> ChildView | None:
        return next(iter(kwargs[index].get(key, ())), None)

    return Seen(
        one("service_deployments"), one("service_fronts"), list(kwargs["service_pods"].get(key, ()))
    )


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=10)
async def service_daemon(
    *,
    body: kopf.Body,
    uid: str,
    namespace: str | None,
    name: str,
    memo: Any,
    stopped: kopf.DaemonStopped,
    logger: logging.Logger | logging.LoggerAdapter[Any],
    **kwargs: Any,
) -> None:
    """Reconcile the service whenever it or its children change, and once per telemetry
    interval measure its replicas (and autoscale), until it is gone."""
    shared, services = context(memo), _services(memo)
    key, beat = _key(namespace, name), f"BigModelService/{uid}"
    shared.health.watches.track(uid)
    rounds = TelemetryRounds(
        shared.kube,
        shared.scraper,
        body,
        shared.telemetry_interval,
        logger,
        shared.metrics,
        "replica",
    )
    reconciler = ServiceReconciler(
        shared.kube, body, logger, services.images, shared.metrics, rounds
    )
    wakeup = services.wakeups.setdefault(key, asyncio.Event())
    measured = time.monotonic()  # the first round one interval in: let replicas start
    try:
        while not stopped:
            wakeup.clear()
            pause = RETRY_SECONDS
            try:
                with shared.metrics.reconciling(SERVICE):
                    if time.monotonic() - measured >= shared.telemetry_interval:
                        measured = time.monotonic()
                        await reconciler.measure(_seen(key, kwargs))
                    await reconciler.step(_seen(key, kwargs))
                pause = RESYNC_SECONDS
            except API_FAILURES as exc:
                logger.warning("reconcile failed, retrying in %gs: %s", RETRY_SECONDS, exc)
            due = shared.telemetry_interval - (time.monotonic() - measured)
            wait = max(0.0, min(pause, due))
            shared.health.heartbeats.beat(beat, wait)
            await woken(wakeup, wait)
    finally:
        services.wakeups.pop(key, None)
        shared.health.heartbeats.forget(beat)
        shared.health.watches.forget(uid)
        rounds.forget()
        shared.metrics.set_phase(namespace or "", SERVICE, name, None)
