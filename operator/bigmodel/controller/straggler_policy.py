"""`spec.telemetry.stragglerPolicy: Replace`, what both kinds share (pure): which straggler is
due for a move off its machine, the record and messages of a move, and S measured after it.

A straggler is due when its cause can be cured by another machine (not `InputPipeline`: its
data loading is slow wherever it runs; a straggler listed without a detail is `Unknown`) and
it has been flagged for `after` windows, counted from a window after its pod was created at
the earliest (a recreated pod is judged on its own measurements). The largest excess over
the peers' median goes first. Each kind adds its own guard rails (`job.replacement`,
`service.replacement`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bigmodel.api import Reason
from bigmodel.api.telemetry import (
    StragglerAction,
    StragglerCause,
    StragglerDetail,
    StragglerReplacement,
    TelemetrySpec,
    TelemetrySummary,
)
from bigmodel.controller.conditions import Event
from bigmodel.telemetry.status import rate_text

NOT_MOVABLE = frozenset({StragglerCause.INPUT_PIPELINE})
"""Causes that follow the pod wherever it runs: never replaced."""


@dataclass(frozen=True)
class Placed:
    """Where a member's pod runs and since when (the pod's spec.nodeName, creation time)."""

    machine: str | None
    created: datetime | None


@dataclass(frozen=True)
class Due:
    """The policy's answer for one look: the straggler to move now, or None and the seconds
    until the first one will be due (None: none is on its way)."""

    detail: StragglerDetail | None = None
    wake_in: float | None = None


def details(telemetry: TelemetrySummary) -> list[StragglerDetail]:
    """A detail per listed straggler: its own, or an `Unknown` one without `since`."""
    known = {d.name: d for d in telemetry.straggler_details}
    return [known.get(name, StragglerDetail(name=name)) for name in telemetry.stragglers]


def allowed(spec: TelemetrySpec, replacements: Sequence[StragglerReplacement]) -> bool:
    """Whether the policy may replace one more: Replace, under maxReplacements, and the
    previous replacement's S after measured (one at a time)."""
    policy = spec.straggler_policy
    return (
        policy.action is StragglerAction.REPLACE
        and len(replacements) < policy.max_replacements
        and not (replacements and replacements[-1].service_quality_after is None)
    )


def due_straggler(
    spec: TelemetrySpec, telemetry: TelemetrySummary, placed: Mapping[str, Placed], now: datetime
) -> Due:
    """The straggler (by pod name, among `placed`) due for a move now (see the module)."""
    window = timedelta(seconds=spec.window_seconds)
    due: list[StragglerDetail] = []
    waits: list[float] = []
    for detail in details(telemetry):
        where = placed.get(detail.name)
        if detail.cause in NOT_MOVABLE or detail.since is None or where is None:
            continue
        if where.machine is None or where.created is None:
            continue
        start = max(detail.since, where.created + window)
        left = (start + spec.straggler_policy.after * window - now).total_seconds()
        if left > 0:
            waits.append(left)
        else:
            due.append(detail)
    if not due:
        return Due(wake_in=min(waits, default=None))
    return Due(max(due, key=lambda d: (d.excess_seconds, d.name)))


def record(
    detail: StragglerDetail, machine: str, telemetry: TelemetrySummary, now: datetime
) -> StragglerReplacement:
    """The status record of moving the straggler `detail` off `machine` now."""
    return StragglerReplacement(
        pod=detail.name,
        machine=machine,
        cause=detail.cause,
        replaced_at=now.replace(microsecond=0),  # as precise as a creationTimestamp
        service_quality_before=telemetry.service_quality,
    )


def _rate(quality: float | None) -> str:
    return rate_text(quality) if quality is not None else "not measured"


def replaced_message(done: StragglerReplacement, detail: str, count: int, limit: int) -> str:
    """What `StragglerReplaced` says: the pod, the machine, the cause and S before."""
    why = f"cause {done.cause.value}" + (f": {detail}" if detail else "")
    return (
        f"{done.pod} moved off machine {done.machine} ({why}); "
        f"S before {_rate(done.service_quality_before)}; replacement {count} of {limit}"
    )


def quality_after(
    last: StragglerReplacement,
    placed: Mapping[str, Placed],
    renewed: Sequence[str],
    telemetry: TelemetrySummary,
    members: int,
    window: timedelta,
) -> float | None:
    """S after the replacement `last`: once the pods `renewed` (by name, among `placed`) were
    all created after it, the first S measured by `members` members a full `window` after
    the newest pod was created; else None."""
    fresh = [placed[name].created for name in renewed if name in placed]
    if not renewed or len(fresh) < len(renewed):
        return None
    if any(created is None or created < last.replaced_at for created in fresh):
        return None
    created = [p.created for p in placed.values() if p.created is not None]
    at = telemetry.updated_at
    if at is None or telemetry.n < members or at < max(created) + window:
        return None
    return telemetry.service_quality


def measured(
    replacements: list[StragglerReplacement],
    placed: Mapping[str, Placed],
    renewed: Sequence[str],
    telemetry: TelemetrySummary,
    spec: TelemetrySpec,
    members: int,
) -> Event | None:
    """Fill in S after the latest replacement of `replacements` (in place) once measured
    (`quality_after`, by `members` measured members); the ReplacementMeasured event
    comparing it with S before, or None."""
    if not replacements or replacements[-1].service_quality_after is not None:
        return None
    last = replacements[-1]
    window = timedelta(seconds=spec.window_seconds)
    after = quality_after(last, placed, renewed, telemetry, members, window)
    if after is None:
        return None
    replacements[-1] = last.model_copy(update={"service_quality_after": after})
    before = last.service_quality_before
    gain = f" (x{after / before:.2f})" if before else ""
    message = (
        f"S after moving {last.pod} off machine {last.machine}: {rate_text(after)}, "
        f"before {_rate(before)}{gain}"
    )
    return Event("Normal", Reason.REPLACEMENT_MEASURED, message)
