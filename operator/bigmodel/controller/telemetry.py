"""Telemetry rounds of one resource inside the operator (either kind): one `observe()` round
over its targets per call, status and events written with telemetry's own field manager, the
straggler state carried from round to round, and its series dropped by `forget()`."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import aiohttp
import kopf

from bigmodel.api.telemetry import TelemetrySpec
from bigmodel.controller.k8s import API_FAILURES, Kube
from bigmodel.telemetry.collect import Target
from bigmodel.telemetry.export import OperatorMetrics
from bigmodel.telemetry.observe import (
    FIELD_MANAGER,
    Observation,
    TelemetryState,
    observe,
    policy_from_spec,
)
from bigmodel.telemetry.readings import Reading
from bigmodel.telemetry.serving import TokenReading


class TelemetryRounds:
    """The collection rounds of one resource of `kind`; `unit` names a member in messages
    ("node", "replica")."""

    def __init__(
        self,
        kube: Kube,
        session: aiohttp.ClientSession,
        body: kopf.Body,
        interval: float,
        logger: logging.Logger | logging.LoggerAdapter[Any],
        metrics: OperatorMetrics,
        unit: str,
    ) -> None:
        self.kube, self.session, self.body, self.interval = kube, session, body, interval
        self.logger, self.metrics, self.unit = logger, metrics, unit
        self.kind: str = body["kind"]
        self.state: TelemetryState | None = None
        """None until the first round, which resumes it from the status."""
        self.missing: frozenset[str] = frozenset()
        """Members without a T_i in the latest round (logged when the set changes)."""

    @property
    def _where(self) -> tuple[str, str]:
        meta = self.body["metadata"]
        return meta["namespace"], meta["name"]

    async def step(
        self,
        targets: Sequence[Target],
        spec: TelemetrySpec,
        reading: Reading,
        tokens: TokenReading | None = None,
    ) -> Observation | None:
        """One round over `targets` (the resource's live members); None when there is none
        (its series are dropped until members come back). `tokens`: an LLM service's."""
        if not targets:
            self.forget()
            return None
        if self.state is None:
            self.state = TelemetryState.resume(self.body.get("status"), targets)
        namespace, name = self._where
        obs = await observe(
            self.kind,
            namespace,
            name,
            targets,
            policy_from_spec(spec, self.interval),
            self.state,
            self.session,
            reading=reading,
            metrics=self.metrics,
            generation=self.body["metadata"].get("generation"),
            unit=self.unit,
            tokens=tokens,
        )
        if frozenset(obs.missing) != self.missing:
            self.missing = frozenset(obs.missing)
            self.logger.info("telemetry: T_i missing from %ss %s", self.unit, obs.missing or "none")
        await self.kube.apply_status(self.body, obs.status_patch(), FIELD_MANAGER)
        self.state = obs.state  # only once written: a failed write repeats the events
        for event in obs.events:
            kopf.event(self.body, type=event.type, reason=event.reason, message=event.message)
        return obs

    async def safe_step(
        self,
        targets: Sequence[Target],
        spec: TelemetrySpec,
        reading: Reading,
        tokens: TokenReading | None = None,
    ) -> Observation | None:
        """`step`, with an API or network error logged instead of raised (the next round
        retries)."""
        try:
            return await self.step(targets, spec, reading, tokens)
        except API_FAILURES as exc:
            self.logger.warning("telemetry round failed: %s", exc)
            return None

    def forget(self) -> None:
        """Drop the resource's exported series (per member, T, S, n, stragglers)."""
        namespace, name = self._where
        self.metrics.forget(namespace, self.kind, name)
