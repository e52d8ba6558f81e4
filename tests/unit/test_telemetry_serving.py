"""What the operator reads of a serving replica: the series of each runtime, and an LLM's
TTFT and TPOT at a percentile over the interval between two scrapes."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from bigmodel.api.service import ServingRuntime
from bigmodel.telemetry.collect import Scrape, Target
from bigmodel.telemetry.readings import MissingReason
from bigmodel.telemetry.serving import TORCH, VLLM, reading_of
from bigmodel.telemetry.textformat import read_series

TTFT_BUCKETS = (0.05, 0.1, 0.2, 0.5, 1.0)
TARGET = Target("r", "r", "http://r/metrics")


class Replica:
    """A replica's token histograms, named as a runtime names them."""

    def __init__(self, ttft: str, tpot: str) -> None:
        self.registry = CollectorRegistry()
        self.ttft = Histogram(ttft, "ttft", buckets=TTFT_BUCKETS, registry=self.registry)
        self.tpot = Histogram(tpot, "tpot", buckets=TTFT_BUCKETS, registry=self.registry)

    def scrape(self, runtime: ServingRuntime = ServingRuntime.TORCH) -> Scrape:
        page = generate_latest(self.registry).decode()
        return Scrape(TARGET, None, raw=read_series(page, reading_of(runtime).series))


def torch_replica() -> Replica:
    return Replica(TORCH.ttft[0], TORCH.tpot[0])


def test_ttft_and_tpot_are_percentiles_of_the_observations_between_two_scrapes() -> None:
    replica = torch_replica()
    for _ in range(10):
        replica.ttft.observe(0.9)  # before the interval: not counted
    earlier = replica.scrape()
    for seconds in (0.06, 0.07, 0.08, 0.09, 0.15, 0.15, 0.15, 0.15, 0.15, 0.3):
        replica.ttft.observe(seconds)
    replica.tpot.observe(0.04)
    tokens = reading_of(ServingRuntime.TORCH, 50).tokens
    round_ = tokens.measure({"r": replica.scrape()}, {"r": earlier})
    assert round_.ttft["r"] == pytest.approx(
        0.1 + 0.1 * 1 / 5
    )  # rank 5 of 10: 1 of 5 in (0.1, 0.2]
    assert round_.tpot["r"] == pytest.approx(0.05 * 0.5)
    assert round_.percentile == 50


def test_no_new_observation_or_no_baseline_gives_no_token_latency() -> None:
    replica = torch_replica()
    replica.ttft.observe(0.1)
    first = replica.scrape()
    tokens = reading_of(ServingRuntime.TORCH).tokens
    assert tokens.measure({"r": first}, {}).ttft == {}
    assert tokens.measure({"r": replica.scrape()}, {"r": first}).ttft == {}


def test_a_failed_scrape_measures_nothing_although_it_keeps_the_baseline() -> None:
    replica = torch_replica()
    replica.ttft.observe(0.1)
    earlier = replica.scrape()
    failed = Scrape(TARGET, None, MissingReason.TIMEOUT, raw=earlier.raw)
    assert reading_of(ServingRuntime.TORCH).tokens.measure({"r": failed}, {"r": earlier}).ttft == {}


@pytest.mark.parametrize("tpot", VLLM.tpot)
def test_vllm_token_latency_is_read_under_either_name_of_its_tpot(tpot: str) -> None:
    replica = Replica(VLLM.ttft[0], tpot)
    earlier = replica.scrape(ServingRuntime.VLLM)
    replica.ttft.observe(0.3)
    replica.tpot.observe(0.02)
    tokens = reading_of(ServingRuntime.VLLM).tokens
    round_ = tokens.measure({"r": replica.scrape(ServingRuntime.VLLM)}, {"r": earlier})
    assert set(round_.ttft) == set(round_.tpot) == {"r"}


def test_the_service_value_is_the_mean_of_its_replicas() -> None:
    replicas = {key: torch_replica() for key in ("a", "b")}
    earlier = {key: r.scrape() for key, r in replicas.items()}
    replicas["a"].ttft.observe(0.07)
    replicas["b"].ttft.observe(0.07)
    replicas["b"].ttft.observe(0.7)
    now = {key: r.scrape() for key, r in replicas.items()}
    round_ = reading_of(ServingRuntime.TORCH, 50).tokens.measure(now, earlier)
    assert round_.service_ttft == pytest.approx((round_.ttft["a"] + round_.ttft["b"]) / 2)
    assert round_.service_tpot is None
