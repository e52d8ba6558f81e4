"""Percentiles of a histogram between two scrapes, as PromQL's histogram_quantile of an
increase: interpolation, the edge buckets, counter resets, and what prometheus_client writes."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from bigmodel.telemetry.quantile import (
    bucket_series,
    buckets_of,
    histogram_quantile,
    increase,
)
from bigmodel.telemetry.textformat import read_series

INF = math.inf
BOUNDS = (0.1, 0.25, 0.5, 1.0, 2.5)


def test_the_rank_is_interpolated_linearly_inside_its_bucket() -> None:
    # 10 observations: 2 up to 0.1, 6 more up to 0.5, 2 more up to 1.
    buckets = {0.1: 2, 0.5: 8, 1.0: 10, INF: 10}
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.1 + 0.4 * 3 / 6)
    assert histogram_quantile(0.9, buckets) == pytest.approx(0.5 + 0.5 * 1 / 2)


def test_the_lowest_bucket_starts_at_zero() -> None:
    assert histogram_quantile(0.5, {0.2: 4, INF: 4}) == pytest.approx(0.1)


def test_a_rank_in_the_inf_bucket_is_the_highest_finite_bound() -> None:
    assert histogram_quantile(0.99, {0.5: 1, 1.0: 2, INF: 10}) == 1.0


def test_no_observation_or_no_inf_bucket_gives_no_percentile() -> None:
    assert histogram_quantile(0.9, {0.5: 0, INF: 0}) is None
    assert histogram_quantile(0.9, {0.5: 3, 1.0: 4}) is None
    assert histogram_quantile(0.9, {}) is None


def test_counts_that_decrease_along_the_buckets_are_made_monotonic() -> None:
    # A scrape racing an observation may show a higher count in a lower bucket.
    assert histogram_quantile(0.5, {0.5: 5, 1.0: 4, INF: 6}) == pytest.approx(0.3)


def test_the_increase_is_per_bucket_and_a_reset_counts_from_zero() -> None:
    earlier = {0.5: 2, 1.0: 3, INF: 3}
    assert increase({0.5: 4, 1.0: 7, INF: 8}, earlier) == {0.5: 2, 1.0: 4, INF: 5}
    restarted = {0.5: 1, 1.0: 1, INF: 1}
    assert increase(restarted, earlier) == restarted
    assert increase({0.5: 1, INF: 2}, {}) == {0.5: 1, INF: 2}  # a histogram new since then


@given(
    st.lists(st.floats(0.001, 5.0), min_size=1, max_size=200),
    st.floats(0.01, 0.99),
)
def test_the_estimate_lies_in_the_bucket_of_the_true_percentile(
    observations: list[float], q: float
) -> None:
    registry = CollectorRegistry()
    histogram = Histogram("h_seconds", "help", buckets=BOUNDS, registry=registry)
    for value in observations:
        histogram.observe(value)
    page = generate_latest(registry).decode()
    buckets = buckets_of(read_series(page, [bucket_series("h_seconds")]), "h_seconds")
    estimate = histogram_quantile(q, buckets)
    assert estimate is not None
    ranked = sorted(observations)
    true = ranked[max(0, math.ceil(q * len(ranked)) - 1)]
    upper = next((b for b in BOUNDS if true <= b), BOUNDS[-1])
    lower = max((b for b in BOUNDS if b < true), default=0.0)
    assert min(lower, BOUNDS[-1]) - 1e-9 <= estimate <= upper + 1e-9
