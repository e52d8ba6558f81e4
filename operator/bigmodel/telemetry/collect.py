"""Scrape T_i from pods: concurrent, bounded HTTP GETs of `/metrics`.

Generic over the resource kind: a `Target` is one node (job) or replica (service); a
`Reading` (readings.py) says which series to read from its page (textformat.py reads them)
and how to turn them into T_i. A target that gives no value is MISSING with a
`MissingReason`, never zero.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

import aiohttp

from bigmodel.telemetry.readings import Missing, MissingReason, Reading
from bigmodel.telemetry.textformat import Series, read_series

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
