"""What the operator reads from a serving replica's `/metrics`, per runtime: T_i, the mean
request seconds since the previous round (`MeanSince` of the request-duration histogram),
and the requests in flight (running plus waiting), read from the same scrape."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bigmodel.api.service import ServingRuntime
from bigmodel.telemetry.collect import MeanSince, Scrape, Series


@dataclass(frozen=True)
class ServingMetrics:
    """Metric names a server exposes: its request-duration histogram and two gauges."""

    request_seconds: str
    """Histogram (or summary) of request seconds; its `_sum` and `_count` are read."""
    running: str
    """Gauge of requests being processed."""
    waiting: str
    """Gauge of requests queued."""


TORCH = ServingMetrics(
    "bigmodel_serving_request_duration_seconds",
    "bigmodel_serving_requests_running",
    "bigmodel_serving_requests_waiting",
)
VLLM = ServingMetrics(
    "vllm:e2e_request_latency_seconds", "vllm:num_requests_running", "vllm:num_requests_waiting"
)
RUNTIME_METRICS: Mapping[ServingRuntime, ServingMetrics] = {
    ServingRuntime.TORCH: TORCH,
    ServingRuntime.VLLM: VLLM,
    ServingRuntime.CUSTOM: TORCH,  # the documented contract for your own server
}


@dataclass(frozen=True)
class ServingReading(MeanSince):
    """T_i as `MeanSince` of the request histogram; the in-flight gauges are read too (kept
    in `Scrape.raw`), so one scrape per replica and round gives both."""

    running: Series
    waiting: Series

    @classmethod
    def of(cls, metrics: ServingMetrics) -> ServingReading:
        name = metrics.request_seconds
        return cls(
            Series(f"{name}_sum"),
            Series(f"{name}_count"),
            Series(metrics.running),
            Series(metrics.waiting),
        )

    @property
    def series(self) -> tuple[Series, ...]:
        return (self.sum, self.count, self.running, self.waiting)

    def in_flight(self, scrape: Scrape) -> float | None:
        """Requests running plus waiting on the replica, None when it did not say."""
        found = [scrape.raw[s] for s in (self.running, self.waiting) if s in scrape.raw]
        return sum(found) if found else None


def reading_of(runtime: ServingRuntime) -> ServingReading:
    """The reading of a runtime's replicas."""
    return ServingReading.of(RUNTIME_METRICS[runtime])
