"""Scraping T_i: reading only the wanted lines of a Prometheus page, and the HTTP side."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from bigmodel.runtime.exposition import NODE_STEP_SECONDS, render
from bigmodel.runtime.stats import RankStats, observe
from bigmodel.telemetry.collect import (
    Scrape,
    ScrapeLimits,
    Target,
    collect,
    new_session,
    pod_url,
    scrape,
)
from bigmodel.telemetry.readings import Latest, MeanSince, MissingReason
from bigmodel.telemetry.textformat import Series

STEP = Latest(Series(NODE_STEP_SECONDS))
REQUESTS = MeanSince(Series("req_seconds_sum"), Series("req_seconds_count"))


def node_page(*step_seconds: float) -> str:
    """The page a node pod serves, one local rank per step time (runtime's own renderer)."""
    return render({rank: observe(RankStats(), t) for rank, t in enumerate(step_seconds)})


@pytest.mark.parametrize(
    ("ip", "url"),
    [("10.0.0.5", "http://10.0.0.5:9400/metrics"), ("fd00::5", "http://[fd00::5]:9400/metrics")],
)
def test_pod_urls(ip: str, url: str) -> None:
    assert pod_url(ip, 9400) == url


# --- over HTTP -------------------------------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    """Start a real aiohttp server on loopback for a handler; returns its /metrics URL."""
    runners: list[web.AppRunner] = []

    async def start(handler: Handler) -> str:
        app = web.Application()
        app.router.add_get("/metrics", handler)
        runner = web.AppRunner(app, shutdown_timeout=0.1)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        return f"http://127.0.0.1:{port}/metrics"

    yield start
    for runner in runners:
        await runner.cleanup()


def page(text: str, status: int = 200) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=text, status=status)

    return handler


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/metrics"


async def scrape_url(url: str, reading: Any = STEP, **limits: Any) -> Scrape:
    async with new_session() as session:
        return await scrape(session, Target("0", "p-0", url), reading, None, ScrapeLimits(**limits))


async def test_scrape_reads_t_i_from_a_node_page(serve: Any) -> None:
    result = await scrape_url(await serve(page(node_page(0.2, 0.3))))
    assert (result.value, result.reason) == (0.3, None)


async def test_http_error_status_is_missing_with_the_status(serve: Any) -> None:
    result = await scrape_url(await serve(page("oops", status=503)))
    assert (result.value, result.reason) == (None, MissingReason.HTTP_STATUS)
    assert "503" in result.detail


async def test_refused_connection_is_missing(serve: Any) -> None:
    result = await scrape_url(closed_port_url())
    assert (result.value, result.reason) == (None, MissingReason.CONNECTION)


async def test_a_slow_pod_times_out(serve: Any) -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response(text="m 1\n")

    result = await scrape_url(await serve(slow), timeout=0.2)
    assert (result.value, result.reason) == (None, MissingReason.TIMEOUT)
    assert result.seconds < 2


async def test_a_page_without_the_metric_is_missing(serve: Any) -> None:
    result = await scrape_url(await serve(page(node_page())))  # no step timed yet
    assert (result.value, result.reason) == (None, MissingReason.METRIC_ABSENT)


async def test_a_page_over_the_size_limit_is_refused(serve: Any) -> None:
    result = await scrape_url(await serve(page("# padding\n" * 1000)), max_bytes=1000)
    assert result.reason is MissingReason.TOO_LARGE


async def test_a_malformed_wanted_line_is_reported(serve: Any) -> None:
    result = await scrape_url(await serve(page(f"{NODE_STEP_SECONDS} twelve\n")))
    assert result.reason is MissingReason.MALFORMED


async def test_collect_bounds_concurrency_and_keeps_target_order(serve: Any) -> None:
    in_flight, peak = 0, 0

    async def counted(request: web.Request) -> web.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.02)
        in_flight -= 1
        return web.Response(text=f"{NODE_STEP_SECONDS} {request.query['t']}\n")

    url = await serve(counted)
    targets = [Target(str(i), f"p-{i}", f"{url}?t={i + 1}") for i in range(12)]
    async with new_session() as session:
        results = await collect(session, targets, STEP, limits=ScrapeLimits(concurrency=3))
    assert list(results) == [t.key for t in targets]
    assert [r.value for r in results.values()] == [float(i + 1) for i in range(12)]
    assert peak == 3


async def test_mean_since_over_two_rounds_and_a_failed_scrape_keeps_the_baseline(
    serve: Any,
) -> None:
    pages = iter(
        [
            "req_seconds_sum 1\nreq_seconds_count 2\n",
            "",  # HTTP 500
            "req_seconds_sum 4\nreq_seconds_count 8\n",
        ]
    )

    async def changing(request: web.Request) -> web.Response:
        text = next(pages)
        return web.Response(text=text, status=200 if text else 500)

    targets = [Target("r", "r", await serve(changing))]
    async with new_session() as session:
        first = await collect(session, targets, REQUESTS)
        second = await collect(session, targets, REQUESTS, first)
        third = await collect(session, targets, REQUESTS, second)
    assert first["r"].reason is MissingReason.NO_BASELINE
    assert second["r"].reason is MissingReason.HTTP_STATUS
    assert third["r"].value == pytest.approx(0.5)  # (4 - 1) / (8 - 2)
