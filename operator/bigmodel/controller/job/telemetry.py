"""Telemetry of one BigModelJob inside the operator: one `observe()` round over its running
node pods per interval, status and events written with telemetry's own field manager.

`handlers` runs the rounds in a daemon of their own, only while the job is Running (so
the 1-second reconcile loop never waits for a scrape), and calls `forget()` when it stops.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import aiohttp
import kopf

from bigmodel.api import API_VERSION, BigModelJob, InvalidResourceError, parse_resource
from bigmodel.controller.job.pods import RUNNING, NodePod
from bigmodel.controller.k8s import ApiError, Kube
from bigmodel.telemetry.collect import Target
from bigmodel.telemetry.export import JOB, TelemetryMetrics, default_metrics
from bigmodel.telemetry.observe import (
    FIELD_MANAGER,
    TelemetryState,
    node_target,
    observe,
    policy_from_spec,
)


def job_targets(pods: Iterable[NodePod], port: int) -> list[Target]:
    """One target per node rank: its Running pod (not being deleted) that has an IP. A pod
    that cannot be scraped yet is not part of the round."""
    live = {p.rank: p for p in pods if p.phase == RUNNING and not p.deleting and p.ip}
    return [node_target(rank, p.name, p.ip or "", port) for rank, p in sorted(live.items())]


class JobTelemetry:
    """One job's collection rounds: the straggler state carried from round to round."""

    def __init__(
        self,
        kube: Kube,
        session: aiohttp.ClientSession,
        body: kopf.Body,
        interval: float,
        logger: logging.Logger | logging.LoggerAdapter[Any],
        metrics: TelemetryMetrics | None = None,
    ) -> None:
        self.kube, self.session, self.body, self.interval = kube, session, body, interval
        self.logger = logger
        self.metrics = metrics or default_metrics()
        self.state: TelemetryState | None = None
        """None until the first round, which resumes it from the status."""
        self.missing: frozenset[str] = frozenset()
        """Nodes without a T_i in the latest round (logged when the set changes)."""

    @property
    def _where(self) -> tuple[str, str]:
        meta = self.body["metadata"]
        return meta["namespace"], meta["name"]

    async def step(self, pods: Iterable[NodePod]) -> None:
        """One round over the job's running node pods (call it while the job is Running)."""
        try:
            job = parse_resource(BigModelJob, self.body)
        except InvalidResourceError:  # the job daemon reports it
            return
        targets = job_targets(pods, job.spec.metrics.port)
        if not targets:  # between two gangs: no node to describe
            self.forget()
            return
        if self.state is None:
            self.state = TelemetryState.resume(self.body.get("status"), targets)
        namespace, name = self._where
        obs = await observe(
            JOB,
            namespace,
            name,
            targets,
            policy_from_spec(job.spec.telemetry, self.interval),
            self.state,
            self.session,
            metrics=self.metrics,
            generation=job.metadata.get("generation"),
        )
        if frozenset(obs.missing) != self.missing:
            self.missing = frozenset(obs.missing)
            self.logger.info("telemetry: T_i missing from nodes %s", obs.missing or "none")
        await self.kube.apply_status(
            {
                "apiVersion": API_VERSION,
                "kind": "BigModelJob",
                "metadata": {"name": name, "namespace": namespace},
                "status": obs.status_patch(),
            },
            FIELD_MANAGER,
        )
        self.state = obs.state  # only once written: a failed write repeats the events
        for event in obs.events:
            kopf.event(self.body, type=event.type, reason=event.reason, message=event.message)

    async def safe_step(self, pods: Iterable[NodePod]) -> None:
        """`step`, with an API or network error logged instead of raised (next round
        retries)."""
        try:
            await self.step(pods)
        except (ApiError, aiohttp.ClientError, TimeoutError) as exc:
            self.logger.warning("telemetry round failed: %s", exc)

    def forget(self) -> None:
        """Drop the job's exported series (per node, T, S, n, stragglers)."""
        namespace, name = self._where
        self.metrics.forget(namespace, JOB, name)
