"""Operator-wide state every controller shares, kept in kopf's memo: the API client, the
session that scrapes pods, the exported metrics, the telemetry interval and the heartbeats
of the per-resource daemons."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import kopf

from bigmodel.controller.health import Heartbeats
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
    heartbeats: Heartbeats = field(default_factory=Heartbeats)


def context(memo: Any) -> OperatorContext:
    """The operator's context, from kopf's memo."""
    found: OperatorContext = memo.context
    return found


@kopf.on.startup()
async def start(memo: Any, **_: Any) -> None:
    """Connect to the cluster and read `BIGMODEL_TELEMETRY_INTERVAL`."""
    metrics = default_metrics()
    memo.context = OperatorContext(
        Kube(load_client_config(), metrics),
        new_session(),
        metrics,
        interval_from_env(os.environ),
    )


@kopf.on.cleanup()
async def stop(memo: Any, **_: Any) -> None:
    """Close the client sessions."""
    shared = context(memo)
    await shared.kube.close()
    await shared.scraper.close()
