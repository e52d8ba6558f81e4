"""Operator-wide state every controller shares, kept in kopf's memo: the API client, the
session that scrapes pods, the exported metrics, the telemetry interval and the heartbeats
of the per-resource daemons and the rest of the operator's health."""

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
    """What /healthz and /readyz judge (daemons' heartbeats, watches, loop, API)."""
    checks: asyncio.Task[None] | None = None
    """The event loop's tick and the API check feeding `health`."""


def removed(**kwargs: Any) -> bool:
    """An event filter (`when=`) keeping only the events of objects gone from the cluster:
    kopf drops them from an index without calling its handler."""
    return bool(kwargs["type"] == "DELETED")


async def woken(event: asyncio.Event, seconds: float) -> bool:
    """Wait until `event` is set (True) or `seconds` pass (False): a daemon's sleep between
    two looks at its resource, with no task per wait (unlike `asyncio.wait_for`)."""
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True


def context(memo: Any) -> OperatorContext:
    """The operator's context, from kopf's memo."""
    found: OperatorContext = memo.context
    return found


@kopf.on.startup()
async def start(memo: Any, **_: Any) -> None:
    """Connect to the cluster, read `BIGMODEL_TELEMETRY_INTERVAL` and start the health
    checks (of the `Health` that `run_operator` serves, passed in the memo with the watched
    namespaces). The API check lists one BigModelJob where the operator watches: it needs
    the API server, the CRD and the operator's permissions."""
    metrics = default_metrics()
    health: Health = getattr(memo, "health", None) or Health()
    kube = Kube(load_client_config(), metrics, written=health.watches.wrote)
    shared = OperatorContext(kube, new_session(), metrics, interval_from_env(os.environ), health)
    namespace = next(iter(getattr(memo, "namespaces", None) or ()), None)
    jobs = {
        "apiVersion": API_VERSION,
        "kind": "BigModelJob",
        "metadata": {"name": "", "namespace": namespace},
    }

    async def list_one_job() -> None:
        await kube.request("GET", await kube.path(jobs, name=False), params={"limit": "1"})

    shared.checks = asyncio.create_task(health.run_checks(list_one_job))
    memo.context = shared


@kopf.on.cleanup()
async def stop(memo: Any, **_: Any) -> None:
    """Close the client sessions."""
    shared = context(memo)
    if shared.checks is not None:
        shared.checks.cancel()
    await shared.kube.close()
    await shared.scraper.close()
