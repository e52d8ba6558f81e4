"""Scrape T_i from pods: concurrent, bounded HTTP GETs of `/metrics`, read line by line.

Generic over the resource kind: a `Target` is one node (job) or replica (service), and a
`Reading` says which series to read from its page and how to turn them into T_i: the
latest value of a gauge (`Latest`: a job node's `bigmodel_node_step_seconds`) or a mean
over the interval between two scrapes (`MeanSince`: a replica's request seconds, from the
`_sum` and `_count` of its histogram). A target that gives no value is MISSING with a
`MissingReason`, never zero. Pages are not parsed into metric families: only the lines of the
wanted series are found (`str.find` on line starts) and parsed, escapes included.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Protocol

import aiohttp

DEFAULT_TIMEOUT_SECONDS = 2.0
"""Per scrape. A pod that cannot answer in 2 s is reported missing, not waited for."""
DEFAULT_CONCURRENCY = 64
"""Scrapes in flight per collection round (the session's connector bounds the total)."""
DEFAULT_MAX_BYTES = 4 * 1024 * 1024
"""A page larger than this is refused (TooLarge): a runaway exporter cannot eat memory."""
METRICS_PATH = "/metrics"
_HEADERS = {
    # The classic text format (not OpenMetrics), uncompressed: on a pod network gzip costs
    # more CPU on both ends than it saves.
    "Accept": "text/plain;version=0.0.4;q=1.0,*/*;q=0.1",
    "Accept-Encoding": "identity",
}


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


@dataclass(frozen=True)
class Target:
    """One endpoint to scrape: `key` names the node (a job's node rank) or replica."""

    key: str
    pod: str
    url: str


def pod_url(ip: str, port: int, path: str = METRICS_PATH) -> str:
    """`http://IP:PORT/metrics`, bracketing an IPv6 address."""
    host = f"[{ip}]" if ":" in ip else ip
    return f"http://{host}:{port}{path}"


@dataclass(frozen=True)
class Series:
    """A series selector: metric name and label values it must carry (others may differ).
    Several matching series are added up (a counter split by label). With `by` (a label
    name), they are added up per value of that label instead: one series per value, keyed
    `Series(name, labels | {by: value})` (a histogram's buckets, by `le`)."""

    name: str
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    by: str | None = None

    def __hash__(self) -> int:
        return hash((self.name, tuple(sorted(self.labels.items())), self.by))


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


@dataclass(frozen=True)
class Scrape:
    """What one target gave this round: T_i or why not, and the raw values read (kept for
    the next round's `MeanSince`)."""

    target: Target
    value: float | None
    reason: MissingReason | None = None
    detail: str = ""
    raw: Mapping[Series, float] = field(default_factory=lambda: MappingProxyType({}))
    at: float = 0.0
    """Monotonic time when the answer arrived."""
    seconds: float = 0.0
    """How long the scrape took."""


# --- Prometheus text format, only the lines asked for ---------------------------------------

_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}


def _labels(line: str, start: int) -> tuple[dict[str, str], int]:
    """Parse `{a="x",b="y"}` from `line[start] == "{"`; returns labels and the index after
    the closing brace. Raises ValueError on a malformed block."""
    labels: dict[str, str] = {}
    i, end = start + 1, len(line)
    while True:
        while i < end and line[i] in " \t":
            i += 1
        if i < end and line[i] == "}":
            return labels, i + 1
        equals = line.find("=", i)
        if equals < 0:
            raise ValueError("label without '='")
        name = line[i:equals].strip()
        i = equals + 1
        while i < end and line[i] in " \t":
            i += 1
        if i >= end or line[i] != '"':
            raise ValueError(f"label {name!r}: value not quoted")
        i += 1
        chars: list[str] = []
        while True:
            quote = line.find('"', i)
            backslash = line.find("\\", i, quote if quote >= 0 else end)
            if quote < 0:
                raise ValueError(f"label {name!r}: unterminated value")
            if backslash < 0:
                chars.append(line[i:quote])
                i = quote + 1
                break
            chars.append(line[i:backslash])
            escaped = line[backslash + 1 : backslash + 2]
            if escaped not in _ESCAPES:
                raise ValueError(f"label {name!r}: bad escape \\{escaped}")
            chars.append(_ESCAPES[escaped])
            i = backslash + 2
        if not name:
            raise ValueError("empty label name")
        labels[name] = "".join(chars)
        while i < end and line[i] in " \t":
            i += 1
        if i < end and line[i] == ",":
            i += 1
        elif i < end and line[i] != "}":
            raise ValueError(f"unexpected {line[i]!r} after label {name!r}")


def _next_line(page: str, needle: str, position: int) -> int:
    """Start of the next line beginning with `needle[1:]` at or after `position`, or -1."""
    found = page.find(needle, position)
    return found + 1 if found >= 0 else -1


def _lines_of(page: str, name: str) -> Iterator[str]:
    """The sample lines of metric `name` (not of a longer name sharing its prefix)."""
    needle = "\n" + name
    start = 0 if page.startswith(name) else _next_line(page, needle, 0)
    while start >= 0:
        after = start + len(name)
        end = page.find("\n", after)
        if after == len(page) or page[after] in "{ \t":  # not `name_ewma` for `name`
            yield page[start : len(page) if end < 0 else end].rstrip("\r")
        start = -1 if end < 0 else _next_line(page, needle, end)


def parse_sample(line: str, name: str) -> tuple[dict[str, str], float]:
    """Labels and value of one sample line of `name` (an optional timestamp is ignored).
    Raises ValueError when the line is not valid text exposition."""
    i = len(name)
    while i < len(line) and line[i] in " \t":
        i += 1
    labels: dict[str, str] = {}
    if i < len(line) and line[i] == "{":
        labels, i = _labels(line, i)
    fields = line[i:].split()
    if not 1 <= len(fields) <= 2:
        raise ValueError(f"expected 'value [timestamp]' after the labels in {line[:200]!r}")
    try:
        value = float(fields[0])
    except ValueError:
        raise ValueError(f"value {fields[0][:50]!r} is not a number") from None
    return labels, value


def read_series(page: str, wanted: Sequence[Series]) -> dict[Series, float]:
    """The value of each wanted series present on `page` (matching series added up, per
    value of its `by` label if it has one).
    Raises ValueError on a malformed line of a wanted series."""
    found: dict[Series, float] = {}
    for series in wanted:
        for line in _lines_of(page, series.name):
            labels, value = parse_sample(line, series.name)
            if not all(labels.get(k) == v for k, v in series.labels.items()):
                continue
            key = series
            if series.by is not None:
                if series.by not in labels:
                    continue
                key = Series(
                    series.name, MappingProxyType({**series.labels, series.by: labels[series.by]})
                )
            found[key] = found.get(key, 0.0) + value
    return found


# --- scraping -------------------------------------------------------------------------------


def new_session(limit: int = 100) -> aiohttp.ClientSession:
    """A client session for scraping pods: `limit` connections in all (every job's rounds
    share it), no cookies, no proxy from the environment, no automatic decompression.
    Create it inside the running event loop; close it on shutdown."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, ttl_dns_cache=60),
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
        trust_env=False,
    )


@dataclass(frozen=True)
class ScrapeLimits:
    """Per-scrape timeout, scrapes in flight per round, and the largest page accepted."""

    timeout: float = DEFAULT_TIMEOUT_SECONDS
    concurrency: int = DEFAULT_CONCURRENCY
    max_bytes: int = DEFAULT_MAX_BYTES

    def __post_init__(self) -> None:
        if not (self.timeout > 0 and self.concurrency >= 1 and self.max_bytes >= 1):
            raise ValueError(f"scrape limits must be positive: {self}")


DEFAULT_LIMITS = ScrapeLimits()


async def _fetch(session: aiohttp.ClientSession, url: str, limits: ScrapeLimits) -> str:
    timeout = aiohttp.ClientTimeout(total=limits.timeout)
    try:
        async with session.get(
            url, headers=_HEADERS, timeout=timeout, allow_redirects=False
        ) as response:
            if response.status != 200:
                raise Missing(MissingReason.HTTP_STATUS, f"HTTP {response.status} from {url}")
            too_large = Missing(
                MissingReason.TOO_LARGE, f"page of {url} over {limits.max_bytes} bytes"
            )
            if (response.content_length or 0) > limits.max_bytes:
                raise too_large
            body = bytearray()
            async for chunk in response.content.iter_chunked(1 << 16):
                body += chunk
                if len(body) > limits.max_bytes:
                    raise too_large
    except TimeoutError:  # before ClientError: aiohttp's timeouts are both
        raise Missing(
            MissingReason.TIMEOUT, f"no answer from {url} in {limits.timeout:g}s"
        ) from None
    except aiohttp.ClientError as exc:
        raise Missing(MissingReason.CONNECTION, f"{url}: {exc or type(exc).__name__}") from None
    return body.decode("utf-8", errors="replace")


async def scrape(
    session: aiohttp.ClientSession,
    target: Target,
    reading: Reading,
    earlier: Scrape | None = None,
    limits: ScrapeLimits = DEFAULT_LIMITS,
) -> Scrape:
    """Scrape one target; failures come back as a `Scrape` with a reason, never raised."""
    began = time.monotonic()
    raw: Mapping[Series, float] = MappingProxyType({})
    try:
        page = await _fetch(session, target.url, limits)
        try:
            raw = read_series(page, reading.series)
        except ValueError as exc:
            raise Missing(MissingReason.MALFORMED, f"{target.url}: {exc}") from None
        now = time.monotonic()
        value = reading.value(raw, earlier, now)  # NaN or <= 0: aggregation calls it invalid
        return Scrape(target, value, raw=raw, at=now, seconds=now - began)
    except Missing as missing:
        now = time.monotonic()
        kept = raw or (earlier.raw if earlier is not None else raw)
        # A failed scrape keeps the earlier baseline, so a MeanSince resumes from it.
        at = now if raw else (earlier.at if earlier is not None else now)
        return Scrape(target, None, missing.reason, missing.detail, kept, at, now - began)


async def collect(
    session: aiohttp.ClientSession,
    targets: Sequence[Target],
    reading: Reading,
    earlier: Mapping[str, Scrape] | None = None,
    limits: ScrapeLimits = DEFAULT_LIMITS,
) -> dict[str, Scrape]:
    """Scrape every target concurrently (at most `limits.concurrency` at a time); one
    `Scrape` per target key, in the order of `targets`."""
    gate = asyncio.Semaphore(limits.concurrency)
    before = earlier or {}

    async def one(target: Target) -> Scrape:
        async with gate:
            return await scrape(session, target, reading, before.get(target.key), limits)

    results = await asyncio.gather(*(one(t) for t in targets))
    return {scrape.target.key: scrape for scrape in results}
