"""T, S, relative speeds and the sustained-straggler detector."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bigmodel.telemetry.aggregate import (
    StragglerPolicy,
    StragglerState,
    TaskTimeSummary,
    summarize,
    update_stragglers,
)

seconds = st.floats(min_value=1e-4, max_value=1e4, allow_nan=False, allow_infinity=False)
node_times = st.dictionaries(st.text(min_size=1, max_size=4), seconds, min_size=1, max_size=12)


@pytest.mark.parametrize(
    ("times", "n", "total", "quality", "slowest"),
    [
        ({"a": 1.0}, 1, 1.0, 1.0, "a"),
        ({"a": 1.0, "b": 2.0}, 2, 3.0, 0.75, "b"),
        ({"a": 0.5, "b": 0.5, "c": 0.25}, 3, 1.25, (2 + 2 + 4) / 3, "a"),
        ({"a": 2.0, "b": None}, 1, 2.0, 0.5, "a"),
    ],
)
def test_summary_of_known_cases(
    times: dict[str, float | None], n: int, total: float, quality: float, slowest: str
) -> None:
    summary = summarize(times)
    assert (summary.n, summary.slowest) == (n, slowest)
    assert summary.total == pytest.approx(total)
    assert summary.quality == pytest.approx(quality)


def test_spread_and_relative_speeds() -> None:
    summary = summarize({"a": 1.0, "b": 2.0, "c": 4.0})
    assert (summary.minimum, summary.median, summary.maximum) == (1.0, 2.0, 4.0)
    assert dict(summary.relative_speed) == {"a": 1.0, "b": 0.5, "c": 0.25}


def test_missing_nodes_are_named_never_counted_as_zero() -> None:
    summary = summarize({"a": 1.0, "b": None})
    assert summary.missing == ("b",)
    assert summary.n == 1
    assert "b" not in summary.relative_speed


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf])
def test_non_positive_or_non_finite_times_are_invalid(bad: float) -> None:
    summary = summarize({"a": 1.0, "b": bad})
    assert summary.invalid == ("b",)
    assert summary.total == 1.0


def test_no_answer_at_all_gives_an_empty_summary() -> None:
    summary = summarize({"a": None, "b": 0.0})
    assert summary == TaskTimeSummary(0, None, None, None, None, None, None, {}, ("a",), ("b",))


@given(node_times)
def test_quality_lies_between_the_slowest_and_fastest_rates(times: dict[str, float]) -> None:
    summary = summarize(times)
    assert summary.quality is not None and summary.minimum and summary.maximum
    tolerance = 1e-9 * summary.quality
    assert 1 / summary.maximum - tolerance <= summary.quality <= 1 / summary.minimum + tolerance


@given(node_times)
def test_total_times_quality_is_at_least_n(times: dict[str, float]) -> None:
    # Arithmetic mean >= harmonic mean: (T / n) >= 1 / S.
    summary = summarize(times)
    assert summary.total is not None and summary.quality is not None
    assert summary.total * summary.quality >= summary.n * (1 - 1e-9)


@given(node_times)
def test_relative_speeds_are_in_zero_one_with_one_at_the_fastest(times: dict[str, float]) -> None:
    summary = summarize(times)
    speeds = summary.relative_speed
    assert all(0 < r <= 1 for r in speeds.values())
    assert max(speeds.values()) == 1.0
    assert summary.slowest is not None and speeds[summary.slowest] == min(speeds.values())


def _observe(state: StragglerState, times: dict[str, float | None]) -> StragglerState:
    return update_stragglers(state, summarize(times), StragglerPolicy(threshold=0.75, window=3))


@pytest.mark.parametrize(
    ("b_times", "flagged"),
    [
        ([1.0, 1.0, 1.0], False),
        ([2.0], False),  # one slow step is not a straggler
        ([2.0, 2.0], False),
        ([2.0, 2.0, 2.0], True),  # sustained over the window
        ([2.0, 2.0, 1.0, 2.0], False),  # interrupted
        ([2.0, 2.0, 2.0, 1.0], True),  # one good step does not clear it
        ([2.0, 2.0, 2.0, 1.0, 1.0, 1.0], False),  # cleared after a window of recovery
        ([2.0, 2.0, 2.0, None, None], True),  # no answer: no evidence either way
    ],
)
def test_straggler_is_flagged_when_sustained_and_cleared_when_recovered(
    b_times: list[float | None], flagged: bool
) -> None:
    state = StragglerState()
    for b in b_times:
        state = _observe(state, {"a": 1.0, "b": b})
    assert ("b" in state.flagged) == flagged


def test_nodes_gone_from_the_job_are_forgotten() -> None:
    state = StragglerState()
    for _ in range(3):
        state = _observe(state, {"a": 1.0, "b": 2.0})
    state = _observe(state, {"a": 1.0})
    assert "b" not in state.recent and not state.flagged


@pytest.mark.parametrize(("threshold", "window"), [(0.0, 3), (1.5, 3), (0.75, 0)])
def test_policy_rejects_meaningless_settings(threshold: float, window: int) -> None:
    with pytest.raises(ValueError, match="straggler"):
        StragglerPolicy(threshold, window)
