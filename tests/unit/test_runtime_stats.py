"""One rank's step statistics: counting, moving average, buckets, slowest rank, records."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bigmodel.runtime.machine import MachineSample
from bigmodel.runtime.stats import (
    BUCKETS,
    EWMA_ALPHA,
    RECORD_SIZE,
    RankStats,
    StepCounts,
    decode,
    encode,
    node_step_seconds,
    observe,
)


def _observed(*steps: float) -> RankStats:
    stats = RankStats()
    for seconds in steps:
        stats = observe(stats, seconds)
    return stats


def test_counts_steps_latest_and_sum() -> None:
    stats = _observed(0.5, 0.25)
    assert (stats.steps, stats.last, stats.total) == (2, 0.25, 0.75)


def test_moving_average_starts_at_the_first_step_then_follows_with_alpha() -> None:
    stats = _observed(1.0)
    assert stats.ewma == 1.0
    assert observe(stats, 2.0).ewma == pytest.approx(1.0 + EWMA_ALPHA * 1.0)


def test_moving_average_converges_to_a_steady_step_time() -> None:
    assert _observed(10.0, *[0.1] * 200).ewma == pytest.approx(0.1, rel=1e-6)


@pytest.mark.parametrize(
    ("seconds", "bucket"),
    [(0.0005, 0), (0.001, 0), (0.0011, 1), (0.018, 4), (60.0, len(BUCKETS) - 1), (1e6, -1)],
)
def test_a_step_lands_in_the_first_bucket_whose_bound_holds_it(seconds: float, bucket: int) -> None:
    buckets = _observed(seconds).buckets
    assert buckets[bucket] == 1 and sum(buckets) == 1


@given(st.lists(st.floats(min_value=0, max_value=1e7), max_size=50))
def test_the_histogram_has_a_fixed_number_of_buckets_whatever_the_history(
    steps: list[float],
) -> None:
    stats = _observed(*steps)
    assert len(stats.buckets) == len(BUCKETS) + 1
    assert sum(stats.buckets) == stats.steps == len(steps)


def test_node_time_is_the_slowest_ranks_latest_step() -> None:
    ranks = {0: _observed(0.9, 0.1), 1: _observed(0.2), 2: RankStats()}
    assert node_step_seconds(ranks) == 0.2


def test_node_time_is_none_before_any_step() -> None:
    assert node_step_seconds({0: RankStats()}) is None
    assert node_step_seconds({}) is None


def test_records_round_trip_with_a_fixed_size() -> None:
    stats = replace(_observed(0.02, 0.03), loss=2.5)
    record = encode(stats)
    assert len(record) == RECORD_SIZE == len(encode(RankStats()))
    assert decode(record) == stats


def test_an_unset_loss_stays_unset_and_a_nan_loss_stays_nan() -> None:
    assert decode(encode(RankStats())) == RankStats()
    decoded = decode(encode(replace(RankStats(), loss=math.nan)))
    assert decoded is not None and decoded.loss is not None and math.isnan(decoded.loss)


@pytest.mark.parametrize(
    "damage",
    [
        lambda r: r[:-1],  # truncated
        lambda r: r[:8] + bytes([r[8] ^ 1]) + r[9:],  # torn: a byte changed
        lambda r: b"XXXX" + r[4:],  # another layout
    ],
)
def test_damaged_records_are_refused(damage: object) -> None:
    assert callable(damage)
    assert decode(damage(encode(_observed(0.1)))) is None


def test_the_parts_of_a_step_are_moving_averages_like_the_step() -> None:
    counts = StepCounts()
    counts.add(1.0, 0.25)
    counts.add(2.0, 0.5)
    counts.add_communication(0.1)
    stats = counts.snapshot()
    assert stats.input_ewma == pytest.approx(0.25 + EWMA_ALPHA * 0.25)
    assert stats.compute_ewma == pytest.approx(stats.ewma - stats.input_ewma)
    assert (stats.communication_ewma, stats.communication_steps) == (0.1, 1)


def test_a_record_carries_the_parts_and_the_machine_sample() -> None:
    counts = StepCounts()
    counts.add(0.5, 0.1)
    counts.add_communication(0.03)
    counts.machine = MachineSample(
        samples=30, sched_delay=0.25, gpu_throttle_reasons=0x40, gpu_pcie_degraded=True
    )
    stats = counts.snapshot()
    assert decode(encode(stats)) == stats
    assert len(encode(stats)) == RECORD_SIZE
