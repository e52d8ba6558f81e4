"""A job's `CommunicationSlow` condition (pure): a slow network slows every rank's gradient
all-reduce alike, so it is the job's, never a node's.

The job's exposed communication in a round is the least over its nodes (the last rank to
reach the all-reduce waits only for the wire, the others also for it). The condition turns
True after `window` consecutive rounds at >= SLOW_FACTOR times the job's best round and at
least SLOW_MIN_SECONDS above it, and False again after `window` rounds below that.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from bigmodel.api import Condition, ConditionStatus, ConditionType, Reason
from bigmodel.telemetry.evidence import NodeEvidence
from bigmodel.telemetry.status import kept_condition

SLOW_FACTOR = 2.0
"""Exposed communication at least twice the job's best round's..."""
SLOW_MIN_SECONDS = 0.01
"""...and at least 10 ms more per step (a few microseconds doubling is no slow network)."""


@dataclass(frozen=True)
class CommunicationState:
    """The job's best round, its latest, and how many rounds in a row were (not) slow."""

    best: float | None = None
    latest: float | None = None
    slow: bool = False
    streak: int = 0
    """Consecutive rounds disagreeing with `slow` (the condition flips at `window`)."""


def job_communication(evidence: Mapping[str, NodeEvidence]) -> float | None:
    """The job's exposed communication per step this round; None when no node reports it."""
    reported = [e.communication for e in evidence.values() if e.communication is not None]
    return min(reported) if reported else None


def update_communication(
    state: CommunicationState, evidence: Mapping[str, NodeEvidence], window: int
) -> CommunicationState:
    """Fold one round in (a round without a figure changes nothing)."""
    current = job_communication(evidence)
    if current is None:
        return state
    best = current if state.best is None else min(state.best, current)
    slow_now = current >= SLOW_FACTOR * best and current - best >= SLOW_MIN_SECONDS
    streak = state.streak + 1 if slow_now != state.slow else 0
    if streak >= window:
        return CommunicationState(best, current, slow_now, 0)
    return CommunicationState(best, current, state.slow, streak)


def communication_condition(
    state: CommunicationState,
    window: int,
    previous: Condition | None,
    now: datetime,
    generation: int | None = None,
) -> Condition | None:
    """`CommunicationSlow` naming its evidence; None before the job reported any."""
    if state.latest is None or state.best is None:
        return None
    figures = (
        f"exposed communication {state.latest:.3g}s per step (the least over the nodes), "
        f"{state.latest / state.best if state.best > 0 else float('inf'):.1f}x the job's best "
        f"round's {state.best:.3g}s"
    )
    rule = f"{SLOW_FACTOR:g}x and {SLOW_MIN_SECONDS:g}s over it for {window} rounds"
    if state.slow:
        status, reason = ConditionStatus.TRUE, Reason.SLOW_COMMUNICATION
        message = f"All ranks wait on the network: {figures} (slow: {rule})"
    else:
        status, reason = ConditionStatus.FALSE, Reason.COMMUNICATION_NORMAL
        message = f"{figures[0].upper()}{figures[1:]} (slow: {rule})"
    return kept_condition(
        ConditionType.COMMUNICATION_SLOW, status, reason, message, previous, now, generation
    )
