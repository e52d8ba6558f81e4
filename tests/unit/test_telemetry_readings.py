"""T_i from the values read: the latest gauge, or the mean since the earlier scrape."""

from __future__ import annotations

import pytest

from bigmodel.runtime.exposition import NODE_STEP_SECONDS
from bigmodel.telemetry.collect import (
    Scrape,
    Target,
)
from bigmodel.telemetry.readings import Latest, MeanSince, Missing, MissingReason
from bigmodel.telemetry.textformat import Series

STEP = Latest(Series(NODE_STEP_SECONDS))
REQUESTS = MeanSince(Series("req_seconds_sum"), Series("req_seconds_count"))


def test_latest_without_the_gauge_is_missing_not_zero() -> None:
    with pytest.raises(Missing) as missing:
        STEP.value({}, None, 0.0)
    assert missing.value.reason is MissingReason.METRIC_ABSENT


def earlier(sum_: float, count: float) -> Scrape:
    raw = {REQUESTS.sum: sum_, REQUESTS.count: count}
    return Scrape(Target("r", "r", "http://x"), None, raw=raw)


def test_mean_since_is_the_mean_of_the_tasks_between_two_scrapes() -> None:
    now = {REQUESTS.sum: 13.0, REQUESTS.count: 14.0}
    assert REQUESTS.value(now, earlier(10.0, 10.0), 0.0) == pytest.approx(0.75)


def test_mean_since_handles_a_counter_reset_as_prometheus_does() -> None:
    now = {REQUESTS.sum: 1.0, REQUESTS.count: 4.0}
    assert REQUESTS.value(now, earlier(10.0, 10.0), 0.0) == pytest.approx(0.25)


@pytest.mark.parametrize(
    ("before", "reason"),
    [(None, MissingReason.NO_BASELINE), (earlier(3.0, 4.0), MissingReason.IDLE)],
)
def test_mean_since_without_baseline_or_new_tasks_is_missing(
    before: Scrape | None, reason: MissingReason
) -> None:
    with pytest.raises(Missing) as missing:
        REQUESTS.value({REQUESTS.sum: 3.0, REQUESTS.count: 4.0}, before, 0.0)
    assert missing.value.reason is reason
