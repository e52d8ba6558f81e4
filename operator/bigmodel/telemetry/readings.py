"""How a target's T_i is made of the series read from its page: the latest value of a
gauge (`Latest`) or a mean over the interval between two scrapes (`MeanSince`); a target
that gives no value is `Missing`, with a `MissingReason`, never zero (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from bigmodel.telemetry.textformat import Series

if TYPE_CHECKING:
    from bigmodel.telemetry.collect import Scrape


class MissingReason(StrEnum):
    """Why a target has no value this round."""

    TIMEOUT = "Timeout"
    CONNECTION = "ConnectionFailed"
    HTTP_STATUS = "HttpStatus"
    TOO_LARGE = "TooLarge"
    MALFORMED = "Malformed"
    METRIC_ABSENT = "MetricAbsent"
    NO_BASELINE = "NoBaseline"
    """A `MeanSince` reading needs an earlier scrape to compare with."""
    IDLE = "Idle"
    """No task finished since the earlier scrape: no mean to take."""
    INVALID = "InvalidValue"
    """A value was read but is no duration (NaN, infinite, zero or negative)."""


class Missing(Exception):
    """No value for a target: why, and a short detail for logs and status messages."""

    def __init__(self, reason: MissingReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class Reading(Protocol):
    """What to read from a page (`series`) and how to make T_i of it (`value`)."""

    @property
    def series(self) -> tuple[Series, ...]: ...

    def value(self, current: Mapping[Series, float], earlier: Scrape | None, now: float) -> float:
        """T_i from this scrape's values (and the target's earlier scrape), or raise
        `Missing`. `now` is the monotonic time of this scrape."""
        ...


@dataclass(frozen=True)
class Latest:
    """T_i is the latest value of a gauge (a job node's `bigmodel_node_step_seconds`)."""

    gauge: Series

    @property
    def series(self) -> tuple[Series, ...]:
        return (self.gauge,)

    def value(self, current: Mapping[Series, float], earlier: Scrape | None, now: float) -> float:
        if self.gauge not in current:
            raise Missing(MissingReason.METRIC_ABSENT, f"no {self.gauge.name} on the page")
        return current[self.gauge]


@dataclass(frozen=True)
class MeanSince:
    """T_i is the mean task seconds since the earlier scrape: delta(sum) / delta(count) of a
    histogram or summary (a service replica's request processing time). A counter that went
    down was reset (the process restarted): its current value is the increase, as in
    PromQL's `increase()`."""

    sum: Series
    count: Series

    @property
    def series(self) -> tuple[Series, ...]:
        return (self.sum, self.count)

    def value(self, current: Mapping[Series, float], earlier: Scrape | None, now: float) -> float:
        for wanted in (self.sum, self.count):
            if wanted not in current:
                raise Missing(MissingReason.METRIC_ABSENT, f"no {wanted.name} on the page")
        if earlier is None or not earlier.raw:
            raise Missing(MissingReason.NO_BASELINE, "first scrape: no earlier one to compare with")
        count = _increase(current[self.count], earlier.raw.get(self.count, 0.0))
        total = _increase(current[self.sum], earlier.raw.get(self.sum, 0.0))
        if count <= 0:
            raise Missing(MissingReason.IDLE, f"no new {self.count.name} since the earlier scrape")
        return total / count


def _increase(now: float, before: float) -> float:
    return now - before if now >= before else now
