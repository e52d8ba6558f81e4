"""Operator-wide state every controller shares, kept in kopf's memo: the API client, the
session that scrapes pods, the exported metrics, the telemetry interval, the operator's
health and the work queues' controllers, whose workers start once the caches are synced."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import kopf

from bigmodel.api import API_VERSION
from bigmodel.controller.health import Health
from bigmodel.controller.k8s import Kube, load_client_config
from bigmodel.controller.workers import Controller
from bigmodel.telemetry.collect import new_session
from bigmodel.telemetry.export import TelemetryMetrics, default_metrics
from bigmodel.telemetry.observe import interval_from_env


@dataclass
class OperatorContext:
    """What the handlers of every kind use; created once at startup."""

    kube: Kube
    scraper: aiohttp.ClientSession
    """Scrapes the pods of every resource (one connection pool for the operator)."""
    metrics: TelemetryMetrics
    telemetry_interval: float
    """Seconds between two telemetry rounds of one resource."""
    health: Health = field(default_factory=Health)
    """What /healthz and /readyz judge (queues draining, caches, watches, loop, API)."""
    checks: asyncio.Task[None] | None = None
    """The event loop's tick and the API check feeding `health`."""
    controllers: list[Controller] = field(default_factory=list)
    """Every work queue with its workers (each kind's, telemetry's)."""

    def add(self, *controllers: Controller) -> None:
        """Run `controllers` with the others: started with them, judged by liveness."""
        for controller in controllers:
            self.controllers.append(controller)
            self.health.queues[controller.name] = controller.waiting

    def caches_synced(self) -> None:
        """kopf has filled every cache from its first listing: the workers may run."""
        self.health.caches_synced = True
        for controller in self.controllers:
            controller.start()

    async def stop_workers(self) -> None:
        """Stop every controller's workers."""
        for controller in self.controllers:
            await controller.stop()


def removed(**kwargs: Any) -> bool:
    """An event filter (`when=`) keeping only the events of objects gone from the cluster:
    kopf drops them from an index without calling its handler."""
    return bool(kwargs["type"] == "DELETED")


def context(memo: Any) -> OperatorContext:
    """The operator's context, from kopf's memo."""
    found: OperatorContext = memo.context
    return found


@kopf.on.startup()
async def start(memo: Any, **_: Any) -> None:
    """Connect to the cluster, read `BIGMODEL_TELEMETRY_INTERVAL` and start the health
    checks (of the `Health` that `run_operator` serves, passed in the memo with the watched
    namespaces). The API check lists one BigModelJob and one BigModelService where the
    operator watches: it needs the API server, the CRDs and the operator's permissions (and
    when there is none of either, the caches have nothing to sync)."""
    metrics = default_metrics()
    health: Health = getattr(memo, "health", None) or Health()
    kube = Kube(load_client_config(), metrics, written=health.watches.wrote)
    shared = OperatorContext(kube, new_session(), metrics, interval_from_env(os.environ), health)
    namespace = next(iter(getattr(memo, "namespaces", None) or ()), None)
    kinds = [
        {"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": "", "namespace": namespace}}
        for kind in ("BigModelJob", "BigModelService")
    ]

    async def list_one_of_each() -> None:
        found = [
            await kube.request("GET", await kube.path(kind, name=False), params={"limit": "1"})
            for kind in kinds
        ]
        if not any(listed.get("items") for listed in found):
            health.caches_synced = True  # nothing to reconcile: no cache to wait for

    shared.checks = asyncio.create_task(health.run_checks(list_one_of_each))
    memo.context = shared


@kopf.on.cleanup()
async def stop(memo: Any, **_: Any) -> None:
    """Stop the workers and close the client sessions."""
    shared = context(memo)
    await shared.stop_workers()
    if shared.checks is not None:
        shared.checks.cancel()
    await shared.kube.close()
    await shared.scraper.close()
