"""What a collection round writes into the resource (pure): `status.telemetry`, the
`StragglerDetected` condition, and the events to emit when the set of stragglers changes.

Nodes are named by their key (a job's node rank) and pod; values of r_i are the speed
relative to the fastest node (`aggregate.summarize`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from bigmodel.api import Condition, ConditionStatus, ConditionType, Reason
from bigmodel.api.telemetry import (
    MAX_PER_NODE,
    NodeTelemetry,
    ReadableTelemetry,
    RunTelemetry,
    StragglerDetail,
    TelemetrySummary,
    TokenTelemetry,
)
from bigmodel.telemetry.aggregate import StragglerPolicy, StragglerState, TaskTimeSummary
from bigmodel.telemetry.causes import Diagnosis
from bigmodel.telemetry.serving import TokenRound

MAX_NAMED = 10
"""Nodes named one by one in a message; the rest are counted."""


@dataclass(frozen=True)
class TelemetryEvent:
    """A Kubernetes event to emit on the resource."""

    type: str  # Normal | Warning
    reason: str
    message: str


def _order(key: str) -> tuple[int, int | str]:
    """Node ranks in numeric order, other keys (replica pod names) after them by name."""
    return (0, int(key)) if key.isdigit() else (1, key)


def ordered(keys: Collection[str]) -> list[str]:
    """`keys` sorted as nodes are listed everywhere: ranks numerically, then names."""
    return sorted(keys, key=_order)


def _pod(pods: Mapping[str, str], key: str) -> str:
    return pods.get(key, key)


def describe(key: str, pods: Mapping[str, str], unit: str = "node") -> str:
    """`node 3 (pod demo-node-3)`, or `replica web-5d9c` when the key is the pod name."""
    pod = _pod(pods, key)
    return f"{unit} {pod}" if pod == key else f"{unit} {key} (pod {pod})"


def seconds_text(seconds: float) -> str:
    """A duration for people: `1.23s`, `12.3s`, `123s`, `4123s`, `412ms`, `0.412ms`."""
    if seconds >= 100:
        return f"{seconds:.0f}s"
    if seconds >= 0.9995:  # 999.5ms and up read 1s
        return f"{seconds:.3g}s"
    return f"{seconds * 1000:.3g}ms"


def rate_text(per_second: float) -> str:
    """A rate for people: `2.43/s`, `0.0412/s`, `1234/s`."""
    return f"{per_second:.0f}/s" if per_second >= 100 else f"{per_second:.3g}/s"


def readable(total: float | None, quality: float | None) -> ReadableTelemetry | None:
    """T and S as `kubectl get` shows them (None: not measured)."""
    if total is None or quality is None:
        return None
    return ReadableTelemetry(total=seconds_text(total), quality=rate_text(quality))


def _running_mean(mean: float | None, count: int, value: float | None) -> float | None:
    """The mean of `count` values, the last of them `value`, from the mean of the others."""
    if value is None:
        return mean
    if mean is None:
        return value
    return mean + (value - mean) / count


def run_telemetry(run: RunTelemetry | None, summary: TaskTimeSummary) -> RunTelemetry | None:
    """The whole run's figures once this round is counted (a round that measured nothing
    does not count; None until one did)."""
    run = run or RunTelemetry()
    if summary.n == 0:
        return run if run.rounds else None
    rounds = run.rounds + 1
    return RunTelemetry(
        rounds=rounds,
        mean_total_task_seconds=_running_mean(run.mean_total_task_seconds, rounds, summary.total),
        mean_service_quality=_running_mean(run.mean_service_quality, rounds, summary.quality),
    )


def previous_telemetry(status_telemetry: Mapping[str, Any] | None) -> TelemetrySummary:
    """What an earlier round (maybe of an earlier operator) wrote, or nothing if unreadable."""
    try:
        return TelemetrySummary.model_validate(status_telemetry or {})
    except ValidationError:
        return TelemetrySummary()


def telemetry_json(telemetry: TelemetrySummary) -> dict[str, Any]:
    """`status.telemetry` as written: JSON, camelCase, unset fields left out."""
    return telemetry.model_dump(mode="json", by_alias=True, exclude_none=True)


def token_telemetry(tokens: TokenRound | None) -> TokenTelemetry | None:
    """The service-wide TTFT and TPOT of a round; None when it measured neither."""
    if tokens is None or not (tokens.ttft or tokens.tpot):
        return None
    return TokenTelemetry(
        percentile=tokens.percentile,
        time_to_first_token_seconds=tokens.service_ttft,
        time_per_output_token_seconds=tokens.service_tpot,
    )


def telemetry_summary(
    summary: TaskTimeSummary,
    times: Mapping[str, float | None],
    flagged: Collection[str],
    pods: Mapping[str, str],
    now: datetime,
    previous: TelemetrySummary | None = None,
    max_per_node: int = MAX_PER_NODE,
    tokens: TokenRound | None = None,
    details: list[StragglerDetail] | None = None,
) -> TelemetrySummary:
    """The `status.telemetry` of the round `summary = summarize(times)`; per-node T_i of the
    `max_per_node` slowest, slowest first. A round that measured nothing keeps the
    `previous` measurement (its `updatedAt` says when it was made): a finished job keeps
    its last T, S and T_i. `tokens`: an LLM service's TTFT and TPOT, per replica and
    service-wide (kept from an earlier round when this one measured none). `details`: why
    each straggler is slow (`straggler_details`)."""
    previous = previous or TelemetrySummary()
    stragglers = [_pod(pods, key) for key in ordered(flagged)]
    details = (details or [])[:max_per_node]
    if summary.n == 0 and previous.total_task_seconds is not None:
        return previous.model_copy(update={"stragglers": stragglers, "straggler_details": details})
    answered = {
        key: t for key, t in times.items() if t is not None and key in summary.relative_speed
    }
    slowest_first = sorted(answered, key=lambda key: (-answered[key], _order(key)))
    per_node = [
        NodeTelemetry(
            name=_pod(pods, key),
            task_seconds=answered[key],
            time_to_first_token_seconds=tokens.ttft.get(key) if tokens else None,
            time_per_output_token_seconds=tokens.tpot.get(key) if tokens else None,
        )
        for key in slowest_first[:max_per_node]
    ]
    return TelemetrySummary(
        n=summary.n,
        total_task_seconds=summary.total,
        service_quality=summary.quality,
        slowest_node=_pod(pods, summary.slowest) if summary.slowest is not None else None,
        stragglers=stragglers,
        straggler_details=details,
        updated_at=now,
        per_node=per_node,
        run=run_telemetry(previous.run, summary),
        readable=readable(summary.total, summary.quality),
        tokens=token_telemetry(tokens) or previous.tokens,
    )


def straggler_details(
    causes: Mapping[str, Diagnosis],
    since: Mapping[str, datetime],
    pods: Mapping[str, str],
) -> list[StragglerDetail]:
    """`status.telemetry.stragglerDetails`: each diagnosed straggler, the largest excess
    first."""
    keys = sorted(causes, key=lambda key: (-causes[key].excess_seconds, _order(key)))
    return [
        StragglerDetail(
            name=_pod(pods, key),
            cause=causes[key].cause,
            detail=causes[key].detail[:1024],
            excess_seconds=max(0.0, causes[key].excess_seconds),
            since=since.get(key),
        )
        for key in keys
    ]


def _speed(state: StragglerState, key: str, unit: str, causes: Mapping[str, Diagnosis]) -> str:
    recent = state.recent.get(key, ())
    speed = f"at {recent[-1]:.2f} of the fastest {unit}'s speed" if recent else "no recent T_i"
    diagnosis = causes.get(key)
    return speed if diagnosis is None else f"{speed}, {diagnosis.cause} ({diagnosis.detail})"


def _named(
    keys: list[str],
    state: StragglerState,
    pods: Mapping[str, str],
    unit: str,
    speed: bool,
    causes: Mapping[str, Diagnosis] | None = None,
) -> str:
    parts = [
        describe(key, pods, unit) + (f" {_speed(state, key, unit, causes or {})}" if speed else "")
        for key in keys[:MAX_NAMED]
    ]
    if len(keys) > MAX_NAMED:
        parts.append(f"and {len(keys) - MAX_NAMED} more")
    return ", ".join(parts)


def straggler_condition(
    state: StragglerState,
    policy: StragglerPolicy,
    pods: Mapping[str, str],
    previous: Condition | None,
    now: datetime,
    generation: int | None = None,
    unit: str = "node",
    causes: Mapping[str, Diagnosis] | None = None,
) -> Condition:
    """`StragglerDetected`: True (`SlowNodes`, naming the stragglers, their r_i and cause)
    or False (`NoStragglers`); lastTransitionTime kept while the status does not change."""
    flagged = ordered(state.flagged)
    rule = (
        f"below {policy.threshold:g} of the fastest {unit}'s speed for "
        f"{policy.window} consecutive observations"
    )
    if flagged:
        status, reason = ConditionStatus.TRUE, Reason.SLOW_NODES
        total = len(pods) or len(state.recent)
        message = (
            f"{len(flagged)} of {total} {unit}s {rule}: "
            f"{_named(flagged, state, pods, unit, speed=True, causes=causes)}"
        )
    else:
        status, reason = ConditionStatus.FALSE, Reason.NO_STRAGGLERS
        message = f"No {unit} {rule}"
    return kept_condition(
        ConditionType.STRAGGLER_DETECTED, status, reason, message, previous, now, generation
    )


def kept_condition(
    kind: ConditionType,
    status: ConditionStatus,
    reason: Reason,
    message: str,
    previous: Condition | None,
    now: datetime,
    generation: int | None,
) -> Condition:
    """A condition telemetry writes, its lastTransitionTime kept while its status holds."""
    unchanged = previous is not None and previous.status is status
    return Condition(
        type=kind,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=previous.last_transition_time if unchanged and previous else now,
        observed_generation=generation,
    )


def straggler_events(
    before: Collection[str],
    after: StragglerState,
    pods: Mapping[str, str],
    unit: str = "node",
    causes: Mapping[str, Diagnosis] | None = None,
) -> tuple[TelemetryEvent, ...]:
    """Events for a change of the flagged set: a Warning naming new stragglers and their
    cause, a Normal naming recovered ones (`StragglersCleared` once none is left). None
    when unchanged."""
    new = ordered(set(after.flagged) - set(before))
    recovered = ordered(set(before) - set(after.flagged))
    events: list[TelemetryEvent] = []
    if new:
        events.append(
            TelemetryEvent(
                "Warning",
                Reason.STRAGGLER_DETECTED,
                f"Straggling {unit}s: {_named(new, after, pods, unit, True, causes)}",
            )
        )
    if recovered:
        reason = Reason.STRAGGLER_RECOVERED if after.flagged else Reason.STRAGGLERS_CLEARED
        events.append(
            TelemetryEvent(
                "Normal",
                reason,
                f"No longer straggling: {_named(recovered, after, pods, unit, speed=False)}",
            )
        )
    return tuple(events)


def communication_events(
    before: Condition | None, after: Condition | None
) -> tuple[TelemetryEvent, ...]:
    """A Warning when `CommunicationSlow` turns True, a Normal when it turns False again."""
    if after is None or (before is not None and before.status is after.status):
        return ()
    if after.status is ConditionStatus.TRUE:
        return (TelemetryEvent("Warning", Reason.SLOW_COMMUNICATION, after.message),)
    if before is not None:
        return (TelemetryEvent("Normal", Reason.COMMUNICATION_NORMAL, after.message),)
    return ()
