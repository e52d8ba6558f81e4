"""Scraping T_i: reading only the wanted lines of a Prometheus page, and the HTTP side."""

from __future__ import annotations

import asyncio
import math
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Gauge, generate_latest

from bigmodel.runtime.exposition import NODE_STEP_SECONDS, render
from bigmodel.runtime.stats import RankStats, observe
from bigmodel.telemetry.collect import (
    Latest,
    MeanSince,
    Missing,
    MissingReason,
    Scrape,
    ScrapeLimits,
    Series,
    Target,
    collect,
    new_session,
    parse_sample,
    pod_url,
    read_series,
    scrape,
)

STEP = Latest(Series(NODE_STEP_SECONDS))
REQUESTS = MeanSince(Series("req_seconds_sum"), Series("req_seconds_count"))


def node_page(*step_seconds: float) -> str:
    """The page a node pod serves, one local rank per step time (runtime's own renderer)."""
    return render({rank: observe(RankStats(), t) for rank, t in enumerate(step_seconds)})


# --- reading lines ---------------------------------------------------------------------------


def test_reads_the_node_step_seconds_of_a_runtime_page() -> None:
    assert read_series(node_page(0.25, 0.5), [Series(NODE_STEP_SECONDS)]) == {
        Series(NODE_STEP_SECONDS): 0.5
    }


def test_a_longer_name_sharing_the_prefix_is_not_read() -> None:
    page = "x_ewma 7\n# HELP x help\n# TYPE x gauge\nx 3\nx_total 9\n"
    assert read_series(page, [Series("x")]) == {Series("x"): 3.0}


@pytest.mark.parametrize(
    ("line", "labels", "value"),
    [
        ("m 1.5", {}, 1.5),
        ("m 1.5 1700000000000", {}, 1.5),
        ("m\t2e-3", {}, 0.002),
        ('m{a="x"} 4', {"a": "x"}, 4.0),
        ('m {a="x",} 4', {"a": "x"}, 4.0),
        ('m{a="}{ ,=",b=""} 5', {"a": "}{ ,=", "b": ""}, 5.0),
        (
            'm{a="q\\"uote",b="back\\\\slash",c="new\\nline"} 6',
            {"a": 'q"uote', "b": "back\\slash", "c": "new\nline"},
            6.0,
        ),
        ("m +Inf", {}, math.inf),
        ("m -Inf", {}, -math.inf),
    ],
)
def test_sample_lines_parse_as_the_text_format_says(
    line: str, labels: dict[str, str], value: float
) -> None:
    assert parse_sample(line, "m") == (labels, value)


def test_nan_is_read_as_nan() -> None:
    assert math.isnan(parse_sample("m NaN", "m")[1])


@pytest.mark.parametrize(
    "line",
    ["m", "m abc", "m 1 2 3", 'm{a="x} 1', "m{a=x} 1", 'm{a="x" b="y"} 1', 'm{a="\\q"} 1'],
)
def test_malformed_lines_are_refused(line: str) -> None:
    with pytest.raises(ValueError):
        parse_sample(line, "m")


def test_matching_series_are_added_up_and_labels_select() -> None:
    page = 'c{code="200"} 3\nc{code="500"} 2\nc{code="200",path="/x"} 1\n'
    found = read_series(page, [Series("c"), Series("c", {"code": "500"})])
    assert found == {Series("c"): 6.0, Series("c", {"code": "500"}): 2.0}


def test_a_series_split_by_a_label_is_added_up_per_value_of_it() -> None:
    page = (
        'h_bucket{le="0.5",a="x"} 1\nh_bucket{le="0.5",a="y"} 2\n'
        'h_bucket{le="+Inf"} 4\nh_bucket 9\n'
    )
    found = read_series(page, [Series("h_bucket", by="le")])
    assert found == {
        Series("h_bucket", {"le": "0.5"}): 3.0,
        Series("h_bucket", {"le": "+Inf"}): 4.0,
    }  # the line without `le` is not a bucket


def test_windows_line_endings_and_a_first_line_without_newline() -> None:
    assert read_series("m 1\r\nn 2", [Series("m"), Series("n")]) == {
        Series("m"): 1.0,
        Series("n"): 2.0,
    }


label_values = st.text(st.characters(codec="utf-8"), max_size=12)


@given(label_values, st.floats(allow_nan=False, width=64))
def test_reads_what_prometheus_client_writes(label: str, value: float) -> None:
    registry = CollectorRegistry()
    Gauge("g", "help", ["a"], registry=registry).labels(label).set(value)
    Gauge("g_other", "help", registry=registry).set(1)
    page = generate_latest(registry).decode()
    assert read_series(page, [Series("g", {"a": label})]) == {Series("g", {"a": label}): value}


# --- readings: T_i from values ---------------------------------------------------------------


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
