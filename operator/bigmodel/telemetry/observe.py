"""One collection round of one resource, the single call a controller daemon makes:
scrape -> summarize -> stragglers and their causes -> export -> status, conditions, events.

    state = TelemetryState.resume(body.get("status"), targets)   # once, at daemon start
    while running:                                               # every INTERVAL_SECONDS
        obs = await observe(JOB_KIND, namespace, name, targets, policy, state, session)
        state = obs.state
        apply status `obs.status_patch()` (server-side apply, field manager FIELD_MANAGER)
        emit `obs.events`
    metrics.forget(namespace, JOB_KIND, name)                         # finished or deleted
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import aiohttp

from bigmodel.api import JOB_KIND, Condition, ConditionType
from bigmodel.api.telemetry import TelemetrySpec, TelemetrySummary
from bigmodel.runtime.exposition import NODE_STEP_SECONDS
from bigmodel.runtime.tasks import TASK_SECONDS_COUNT, TASK_SECONDS_SUM
from bigmodel.telemetry.aggregate import (
    StragglerPolicy,
    StragglerState,
    TaskTimeSummary,
    summarize,
    update_stragglers,
)
from bigmodel.telemetry.causes import Diagnosis, diagnose
from bigmodel.telemetry.collect import (
    DEFAULT_LIMITS,
    Scrape,
    ScrapeLimits,
    Target,
    collect,
    pod_url,
)
from bigmodel.telemetry.communication import (
    CommunicationState,
    communication_condition,
    update_communication,
)
from bigmodel.telemetry.evidence import WithEvidence, round_evidence
from bigmodel.telemetry.export import OperatorMetrics, ResourceTelemetry, default_metrics
from bigmodel.telemetry.readings import Latest, MeanSince, MissingReason, Reading
from bigmodel.telemetry.serving import TokenReading, TokenRound
from bigmodel.telemetry.status import (
    TelemetryEvent,
    communication_events,
    previous_telemetry,
    straggler_condition,
    straggler_details,
    straggler_events,
    telemetry_json,
    telemetry_summary,
)
from bigmodel.telemetry.textformat import Series

INTERVAL_SECONDS = 15.0
"""Default seconds between two rounds of one resource (Prometheus's usual scrape interval)."""
FIELD_MANAGER = "bigmodel-telemetry"
"""Server-side apply field manager of `status.telemetry` and the StragglerDetected condition."""
JOB_STEP_SECONDS: Reading = WithEvidence(Latest(Series(NODE_STEP_SECONDS)))
"""A job node's T_i: the pod's `bigmodel_node_step_seconds` gauge (with the parts of its
step and its machine's figures, to name a straggler's cause)."""
JOB_TASK_SECONDS: Reading = MeanSince(Series(TASK_SECONDS_SUM), Series(TASK_SECONDS_COUNT))
"""A task engine worker's T_i (Dask, Spark): mean compute seconds of the tasks it finished
since the previous round, from its `bigmodel_worker_task_seconds` summary."""
INTERVAL_ENV = "BIGMODEL_TELEMETRY_INTERVAL"
"""Seconds between two collection rounds of one resource (default `INTERVAL_SECONDS`, 15)."""


def node_target(rank: int, pod: str, ip: str, port: int) -> Target:
    """The target of a job's node pod: key = node rank, URL from the pod IP."""
    return Target(str(rank), pod, pod_url(ip, port))


def policy_from_spec(
    spec: TelemetrySpec, interval_seconds: float = INTERVAL_SECONDS
) -> StragglerPolicy:
    """The straggler rule of a resource: its threshold, and as many consecutive rounds as
    fit in its `windowSeconds` (at least one)."""
    window = max(1, math.floor(spec.window_seconds / interval_seconds))
    return StragglerPolicy(threshold=spec.straggler_threshold, window=window)


@dataclass(frozen=True)
class TelemetryState:
    """What a round carries to the next: straggler history, the condition last written,
    and each target's last scrape (the baseline of a `MeanSince` reading)."""

    stragglers: StragglerState = field(default_factory=StragglerState)
    condition: Condition | None = None
    scrapes: Mapping[str, Scrape] = field(default_factory=lambda: MappingProxyType({}))
    last: TelemetrySummary = field(default_factory=TelemetrySummary)
    """`status.telemetry` as last written (kept by a round that measures nothing)."""
    causes: Mapping[str, Diagnosis] = field(default_factory=lambda: MappingProxyType({}))
    """Per flagged key, its latest cause (kept while it has no T_i)."""
    since: Mapping[str, datetime] = field(default_factory=lambda: MappingProxyType({}))
    """Per flagged key, when it was flagged in its current streak."""
    communication: CommunicationState = field(default_factory=CommunicationState)
    communication_condition: Condition | None = None

    @classmethod
    def resume(cls, status: Mapping[str, Any] | None, targets: Sequence[Target]) -> TelemetryState:
        """The state of a daemon (re)starting on a resource whose status an earlier operator
        wrote: its StragglerDetected condition, and its listed stragglers still flagged
        (they clear after `window` good rounds, instead of flapping False then True)."""
        status = status or {}
        conditions = {
            c.get("type"): Condition.model_validate(c) for c in status.get("conditions") or ()
        }
        last = previous_telemetry(status.get("telemetry"))
        listed = set(last.stragglers)
        flagged = frozenset(t.key for t in targets if t.pod in listed)
        detailed = {d.name: d.since for d in last.straggler_details if d.since is not None}
        since = {t.key: detailed[t.pod] for t in targets if t.key in flagged and t.pod in detailed}
        return cls(
            StragglerState(dict.fromkeys(flagged, ()), flagged),
            conditions.get(ConditionType.STRAGGLER_DETECTED),
            last=last,
            since=MappingProxyType(since),
            communication_condition=conditions.get(ConditionType.COMMUNICATION_SLOW),
        )


@dataclass(frozen=True)
class Observation:
    """The outcome of one round."""

    state: TelemetryState
    """Pass to the next round."""
    summary: TaskTimeSummary
    scrapes: Mapping[str, Scrape]
    """Per target key: T_i, or why it is missing (`reason`, `detail`)."""
    telemetry: dict[str, Any]
    """`status.telemetry` as JSON."""
    condition: Condition
    """`StragglerDetected`, with lastTransitionTime kept while its status holds."""
    communication: Condition | None
    events: tuple[TelemetryEvent, ...]
    """To emit now: stragglers found or recovered this round (empty most rounds)."""
    tokens: TokenRound | None = None
    """An LLM service's TTFT and TPOT per replica this round (when asked for)."""

    def status_patch(self) -> dict[str, Any]:
        """The status fields telemetry owns, for a server-side apply with FIELD_MANAGER
        (conditions are a list-map by type, so other managers' conditions stay)."""
        conditions = [
            c.model_dump(mode="json", by_alias=True, exclude_none=True)
            for c in (self.condition, self.communication)
            if c is not None
        ]
        return {"telemetry": self.telemetry, "conditions": conditions}

    @property
    def missing(self) -> dict[str, str]:
        """Per target key without a value: `MissingReason: detail` (for a log line)."""
        return {
            key: f"{scrape.reason}: {scrape.detail}"
            for key, scrape in self.scrapes.items()
            if scrape.reason is not None
        }


async def observe(
    kind: str,
    namespace: str,
    name: str,
    targets: Sequence[Target],
    policy: StragglerPolicy,
    state: TelemetryState,
    session: aiohttp.ClientSession,
    *,
    reading: Reading = JOB_STEP_SECONDS,
    limits: ScrapeLimits = DEFAULT_LIMITS,
    metrics: OperatorMetrics | None = None,
    generation: int | None = None,
    now: datetime | None = None,
    unit: str = "node",
    tokens: TokenReading | None = None,
) -> Observation:
    """Run one collection round of the resource `kind` `namespace/name`.

    `targets`: its live pods with a metrics endpoint (for a job: one per running node pod,
    `node_target(rank, pod, podIP, spec.metrics.port)`); a node without a target is not
    part of the round and its history is dropped. Scrapes run concurrently within `limits`;
    failures come back per target in `Observation.scrapes` (never raised, never zero).
    Exports the round to `metrics` (default: the operator's registry) and returns the
    status, condition and events to write; the only I/O is the scrapes. `unit` names a
    member in messages ("node", or "replica" for a service). Pass the returned `state` to
    the next round; call `metrics.forget(namespace, kind, name)` when the resource ends.
    `tokens`: also read an LLM service's TTFT and TPOT (its `reading` must read their
    histograms), into status, metrics and `Observation.tokens`.
    """
    began = time.monotonic()
    metrics = metrics or default_metrics()
    now = now or datetime.now(UTC)
    scrapes = await collect(session, targets, reading, state.scrapes, limits)
    latency = tokens.measure(scrapes, state.scrapes) if tokens is not None else None
    times = {key: scrape.value for key, scrape in scrapes.items()}
    summary = summarize(times)
    for key in summary.invalid:  # read, but not a duration: NaN, +Inf, <= 0
        scrapes[key] = replace(
            scrapes[key],
            reason=MissingReason.INVALID,
            detail=f"T_i = {scrapes[key].value!r} is not a positive finite number",
        )
    stragglers = update_stragglers(state.stragglers, summary, policy)
    pods = {target.key: target.pod for target in targets}
    valid = summary.relative_speed
    evidence = round_evidence(scrapes)
    valid_times = {key: t for key, t in times.items() if t is not None and key in valid}
    causes = {
        key: diagnosis
        for key, diagnosis in {
            **state.causes,
            **diagnose(valid_times, evidence, stragglers.flagged),
        }.items()
        if key in stragglers.flagged
    }
    since = {key: state.since.get(key, now) for key in stragglers.flagged}
    condition = straggler_condition(
        stragglers, policy, pods, state.condition, now, generation, unit, causes
    )
    events = straggler_events(state.stragglers.flagged, stragglers, pods, unit, causes)
    communication = state.communication
    communicated: Condition | None = None
    if kind == JOB_KIND:
        communication = update_communication(communication, evidence, policy.window)
        communicated = (
            communication_condition(
                communication, policy.window, state.communication_condition, now, generation
            )
            or state.communication_condition
        )
        events += communication_events(state.communication_condition, communicated)
    metrics.record(
        ResourceTelemetry(
            namespace,
            kind,
            name,
            task_seconds={key: t for key, t in times.items() if t is not None and key in valid},
            relative_speed=dict(valid),
            total=summary.total,
            quality=summary.quality,
            stragglers=len(stragglers.flagged),
            tokens=latency,
            causes={key: diagnosis.cause for key, diagnosis in causes.items()},
        )
    )
    metrics.record_round(kind, (s.reason for s in scrapes.values()), time.monotonic() - began)
    details = straggler_details(causes, since, pods)
    written = telemetry_summary(
        summary, times, stragglers.flagged, pods, now, state.last, tokens=latency, details=details
    )
    return Observation(
        state=TelemetryState(
            stragglers,
            condition,
            MappingProxyType(scrapes),
            written,
            MappingProxyType(causes),
            MappingProxyType(since),
            communication,
            communicated or state.communication_condition,
        ),
        summary=summary,
        scrapes=MappingProxyType(scrapes),
        telemetry=telemetry_json(written),
        condition=condition,
        communication=communicated,
        events=events,
        tokens=latency,
    )
