"""What the operator reads from a serving replica's `/metrics`, per runtime: T_i, the mean
request seconds since the previous round (`MeanSince` of the request-duration histogram),
the requests in flight (running plus waiting), and an LLM's token latency (time to first
token and time per output token at a percentile of their histograms over the round), all
read from the same scrape."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from bigmodel.api.service import DEFAULT_PERCENTILE, ServingRuntime
from bigmodel.telemetry.collect import Scrape
from bigmodel.telemetry.quantile import bucket_series, buckets_of, histogram_quantile, increase
from bigmodel.telemetry.readings import MeanSince
from bigmodel.telemetry.textformat import Series


@dataclass(frozen=True)
class ServingMetrics:
    """Metric names a server exposes: its request-duration histogram and two gauges."""

    request_seconds: str
    """Histogram (or summary) of request seconds; its `_sum` and `_count` are read."""
    running: str
    """Gauge of requests being processed."""
    waiting: str
    """Gauge of requests queued."""
    ttft: tuple[str, ...] = ()
    """Histogram of time to first token, in seconds (the first name on the page is read)."""
    tpot: tuple[str, ...] = ()
    """Histogram of time per output token, in seconds (the first name on the page is read)."""


TORCH = ServingMetrics(
    "bigmodel_serving_request_duration_seconds",
    "bigmodel_serving_requests_running",
    "bigmodel_serving_requests_waiting",
    ttft=("bigmodel_serving_time_to_first_token_seconds",),
    tpot=("bigmodel_serving_time_per_output_token_seconds",),
)
VLLM = ServingMetrics(
    "vllm:e2e_request_latency_seconds",
    "vllm:num_requests_running",
    "vllm:num_requests_waiting",
    ttft=("vllm:time_to_first_token_seconds",),
    # vLLM >= 0.11 renamed it to inter_token_latency; earlier releases have only the first.
    tpot=("vllm:inter_token_latency_seconds", "vllm:time_per_output_token_seconds"),
)
RUNTIME_METRICS: Mapping[ServingRuntime, ServingMetrics] = {
    ServingRuntime.TORCH: TORCH,
    ServingRuntime.VLLM: VLLM,
    ServingRuntime.CUSTOM: TORCH,  # the documented contract for your own server
}


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


@dataclass(frozen=True)
class TokenRound:
    """Token latency of one round: per replica key, its TTFT and TPOT at `percentile` over
    the interval since its previous scrape (replicas with no new observation left out)."""

    percentile: float
    ttft: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    tpot: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def service_ttft(self) -> float | None:
        """The service's TTFT: the mean over its replicas, as `latency` is of T_i."""
        return _mean(list(self.ttft.values()))

    @property
    def service_tpot(self) -> float | None:
        """The service's TPOT: the mean over its replicas."""
        return _mean(list(self.tpot.values()))


@dataclass(frozen=True)
class TokenReading:
    """How to read TTFT and TPOT from a replica's histograms, at a percentile."""

    ttft: tuple[str, ...]
    tpot: tuple[str, ...]
    percentile: float = DEFAULT_PERCENTILE

    @property
    def series(self) -> tuple[Series, ...]:
        return tuple(bucket_series(name) for name in (*self.ttft, *self.tpot))

    def quantile(
        self, names: Sequence[str], current: Scrape, earlier: Scrape | None
    ) -> float | None:
        """The percentile of the first of `names` on the page since the `earlier` scrape;
        None without a baseline or without a new observation."""
        if earlier is None or not earlier.raw or current.raw is earlier.raw:
            return None  # a failed scrape keeps the earlier values: nothing new was read
        for name in names:
            now = buckets_of(current.raw, name)
            if now:
                delta = increase(now, buckets_of(earlier.raw, name))
                return histogram_quantile(self.percentile / 100, delta)
        return None

    def measure(self, scrapes: Mapping[str, Scrape], earlier: Mapping[str, Scrape]) -> TokenRound:
        """TTFT and TPOT of each replica this round, from its scrape and its previous one."""
        ttft: dict[str, float] = {}
        tpot: dict[str, float] = {}
        for key, scrape in scrapes.items():
            for names, found in ((self.ttft, ttft), (self.tpot, tpot)):
                value = self.quantile(names, scrape, earlier.get(key))
                if value is not None:
                    found[key] = value
        return TokenRound(self.percentile, MappingProxyType(ttft), MappingProxyType(tpot))


@dataclass(frozen=True)
class ServingReading(MeanSince):
    """T_i as `MeanSince` of the request histogram; the in-flight gauges and the token
    histograms are read too (kept in `Scrape.raw`), so one scrape per replica and round
    gives them all."""

    running: Series
    waiting: Series
    tokens: TokenReading

    @classmethod
    def of(cls, metrics: ServingMetrics, percentile: float = DEFAULT_PERCENTILE) -> ServingReading:
        name = metrics.request_seconds
        return cls(
            Series(f"{name}_sum"),
            Series(f"{name}_count"),
            Series(metrics.running),
            Series(metrics.waiting),
            TokenReading(metrics.ttft, metrics.tpot, percentile),
        )

    @property
    def series(self) -> tuple[Series, ...]:
        return (self.sum, self.count, self.running, self.waiting, *self.tokens.series)

    def in_flight(self, scrape: Scrape) -> float | None:
        """Requests running plus waiting on the replica, None when it did not say."""
        found = [scrape.raw[s] for s in (self.running, self.waiting) if s in scrape.raw]
        return sum(found) if found else None


def reading_of(runtime: ServingRuntime, percentile: float | None = None) -> ServingReading:
    """The reading of a runtime's replicas, token latency at `percentile` (default 90)."""
    return ServingReading.of(RUNTIME_METRICS[runtime], percentile or DEFAULT_PERCENTILE)
