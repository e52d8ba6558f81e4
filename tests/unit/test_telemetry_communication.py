"""The job's CommunicationSlow condition (`bigmodel.telemetry.communication`)."""

from __future__ import annotations

from datetime import UTC, datetime

from bigmodel.api import ConditionStatus, ConditionType, Reason
from bigmodel.telemetry.communication import (
    CommunicationState,
    communication_condition,
    job_communication,
    update_communication,
)
from bigmodel.telemetry.evidence import NodeEvidence

NOW = datetime(2026, 12, 7, tzinfo=UTC)


def _round(*seconds: float | None) -> dict[str, NodeEvidence]:
    return {str(i): NodeEvidence(communication=s) for i, s in enumerate(seconds)}


def _fold(state: CommunicationState, rounds: list[dict[str, NodeEvidence]]) -> CommunicationState:
    for evidence in rounds:
        state = update_communication(state, evidence, window=2)
    return state


def test_the_jobs_figure_is_the_least_over_its_nodes() -> None:
    assert job_communication(_round(0.3, 0.05, None)) == 0.05
    assert job_communication(_round(None)) is None


def test_slow_after_window_rounds_well_above_the_best_and_back_after_window_below() -> None:
    state = _fold(CommunicationState(), [_round(0.02, 0.03), _round(0.2, 0.25)])
    assert not state.slow  # one slow round is not enough
    state = _fold(state, [_round(0.2, 0.2)])
    assert state.slow and state.best == 0.02
    condition = communication_condition(state, 2, None, NOW)
    assert condition is not None
    assert (condition.type, condition.status) == (
        ConditionType.COMMUNICATION_SLOW,
        ConditionStatus.TRUE,
    )
    assert condition.reason == Reason.SLOW_COMMUNICATION
    assert "0.2s per step" in condition.message and "10.0x" in condition.message
    state = _fold(state, [_round(0.02), _round(0.021)])
    assert not state.slow


def test_a_straggler_does_not_make_the_network_slow() -> None:
    # The fast nodes wait for the straggler in the all-reduce; the straggler does not.
    state = _fold(CommunicationState(), [_round(0.01, 0.01)] + [_round(0.5, 0.01)] * 4)
    assert not state.slow


def test_tiny_figures_doubling_are_no_slow_network() -> None:
    state = _fold(CommunicationState(), [_round(0.001)] + [_round(0.004)] * 4)
    assert not state.slow


def test_no_condition_before_any_figure_and_a_kept_transition_time() -> None:
    assert communication_condition(CommunicationState(), 2, None, NOW) is None
    state = _fold(CommunicationState(), [_round(0.02)])
    first = communication_condition(state, 2, None, NOW)
    assert first is not None and first.status is ConditionStatus.FALSE
    later = communication_condition(state, 2, first, datetime(2027, 1, 1, tzinfo=UTC))
    assert later is not None and later.last_transition_time == NOW
