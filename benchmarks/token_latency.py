"""What reading an LLM replica's TTFT and TPOT costs the operator per scrape.

A telemetry round of a service reads each replica's page once. With token latency it also
reads every bucket of two histograms and computes two percentiles per replica. This measures,
on one realistic LLM replica page, the CPU time of reading the page with the service reading
of before (request histogram sum and count, running and waiting gauges: the baseline) and of
now (the same plus the TTFT and TPOT buckets), and of the percentiles of one replica from two
scrapes. The page is the torch server's metrics as prometheus_client writes them, with vLLM's
bucket bounds for TTFT and TPOT, after some thousands of requests.

    .venv/bin/python benchmarks/token_latency.py
"""

from __future__ import annotations

import json
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from bigmodel.api.service import ServingRuntime
from bigmodel.telemetry.collect import Scrape, Target
from bigmodel.telemetry.serving import reading_of
from bigmodel.telemetry.textformat import Series, read_series

PREFIX = "bigmodel_serving"
SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
TTFT = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5)
TTFT += (10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)
TPOT = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5)
TPOT += (10.0, 20.0, 40.0, 80.0)
REPEATS = 2000


def replica_page(rng: random.Random, requests: int) -> str:
    """An LLM replica's /metrics after `requests` chat requests."""
    registry = CollectorRegistry()
    duration = Histogram(
        f"{PREFIX}_request_duration_seconds", "d", ["endpoint"], buckets=SECONDS, registry=registry
    )
    queue = Histogram(f"{PREFIX}_queue_seconds", "q", buckets=SECONDS, registry=registry)
    ttft = Histogram(f"{PREFIX}_time_to_first_token_seconds", "t", buckets=TTFT, registry=registry)
    tpot = Histogram(
        f"{PREFIX}_time_per_output_token_seconds", "p", buckets=TPOT, registry=registry
    )
    tokens = Counter(f"{PREFIX}_generation_tokens", "g", registry=registry)
    Gauge(f"{PREFIX}_requests_running", "r", registry=registry).set(7)
    Gauge(f"{PREFIX}_requests_waiting", "w", registry=registry).set(2)
    for endpoint in ("infer", "completions", "chat"):
        duration.labels(endpoint)
    for _ in range(requests):
        first = rng.lognormvariate(-2.5, 0.6)
        per_token = rng.lognormvariate(-3.5, 0.3)
        duration.labels("chat").observe(first + 127 * per_token)
        queue.observe(first / 2)
        ttft.observe(first)
        tpot.observe(per_token)
        tokens.inc(128)
    return generate_latest(registry).decode()


def per_call(function: Callable[[], object]) -> float:
    """Median microseconds of one call, over 7 batches of REPEATS calls."""
    batches = []
    for _ in range(7):
        began = time.process_time()
        for _ in range(REPEATS):
            function()
        batches.append((time.process_time() - began) / REPEATS * 1e6)
    return statistics.median(batches)


def main() -> None:
    rng = random.Random(0)
    earlier_page, page = replica_page(rng, 5000), replica_page(rng, 5200)
    reading = reading_of(ServingRuntime.TORCH)
    baseline: list[Series] = [reading.sum, reading.count, reading.running, reading.waiting]
    target = Target("r", "r", "http://r/metrics")
    earlier = Scrape(target, None, raw=read_series(earlier_page, reading.series))
    current = Scrape(target, None, raw=read_series(page, reading.series))
    results = {
        "page_bytes": len(page),
        "read_baseline_us": round(per_call(lambda: read_series(page, baseline)), 1),
        "read_with_tokens_us": round(per_call(lambda: read_series(page, reading.series)), 1),
        "percentiles_us": round(
            per_call(lambda: reading.tokens.measure({"r": current}, {"r": earlier})), 1
        ),
        "python": platform.python_version(),
        "date": datetime.now(UTC).date().isoformat(),
    }
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
