"""The operator's own health, served on the health port from a thread of its own (so that it
answers, and says so, while the event loop is blocked):

- `/healthz` (liveness) fails only for what a restart of the operator cures: the event loop
  blocked, a work queue that stopped draining (keys ready for `DRAIN_STALL_SECONDS` with no
  worker taking any: every worker stuck), or a watch that stopped delivering (the
  operator's own status writes not seen back through it). API errors never fail it:
  restarting every replica during an API outage would help nothing.
- `/readyz` (readiness) says more: it fails also until the operator has filled its caches
  from its own first LIST of every watched resource (`caches`), and while the API server
  has not answered the operator's checks for `API_GRACE_SECONDS` (one failed request is
  not an outage).

Both answer JSON naming each check, so `curl :8081/healthz` explains a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from bigmodel.runtime.server import Page, PageServer

DRAIN_STALL_SECONDS = 60.0
"""Keys ready this long with no worker taking any: the queue stopped draining."""
LOOP_STALL_SECONDS = 30.0
"""The event loop has not run a tick for this long: it is blocked."""
WATCH_STALL_SECONDS = 120.0
"""An own status write not seen back through the watch after this long: the watch stalled
(kopf also reconnects every watch after `client_timeout`, 330 s)."""
API_GRACE_SECONDS = 30.0
"""The API server may fail the operator's checks this long before readiness fails."""
API_GRACE_ENV = "BIGMODEL_HEALTH_API_GRACE"
WATCH_STALL_ENV = "BIGMODEL_HEALTH_WATCH_STALL"
TICK_SECONDS = 1.0
"""Period of the event loop's tick and of the API check's retries."""
API_CHECK_SECONDS = 10.0
"""Period of the API check while it succeeds."""

log = logging.getLogger(__name__)


def _newer_or_same(seen: str, written: str) -> bool:
    """Whether a watch event of resourceVersion `seen` shows a write that returned `written`.
    Versions are opaque strings to clients; every API server in use (etcd's revisions, the
    sandbox's counter) makes them integers, compared as such; others only match equal."""
    if seen.isdigit() and written.isdigit():
        return int(seen) >= int(written)
    return seen == written


@dataclass
class WatchLag:
    """The operator's own status writes to the resources it watches, each waiting to come
    back through the watch of its kind: a write the watch has not delivered after
    `stale_after` seconds means that watch stopped delivering events."""

    stale_after: float = WATCH_STALL_SECONDS
    tracked: set[str] = field(default_factory=set)
    """Uids of the objects the controllers look after: writes to others are not followed (a
    write racing an object's deletion may never come back)."""
    written: dict[str, tuple[str, float]] = field(default_factory=dict)
    """Per object uid: the latest resourceVersion written and when its oldest write not yet
    seen was made (monotonic)."""
    seen: dict[str, str] = field(default_factory=dict)
    """Per object uid: the latest resourceVersion the watch delivered."""

    def track(self, uid: str) -> None:
        """Follow the writes to the object `uid` (a controller looks after it)."""
        self.tracked.add(uid)

    def wrote(self, obj: Mapping[str, Any], now: float | None = None) -> None:
        """A write returned `obj` (a write that changed nothing returns the version seen)."""
        meta = obj.get("metadata") or {}
        uid, version = meta.get("uid"), meta.get("resourceVersion")
        if not uid or not version or uid not in self.tracked:
            return
        if uid in self.seen and _newer_or_same(self.seen[uid], version):
            return
        since = self.written[uid][1] if uid in self.written else time.monotonic()
        self.written[uid] = (version, since if now is None else now)

    def delivered(self, uid: str, version: str | None) -> None:
        """The watch brought the object `uid` at `version`."""
        if not version or uid not in self.tracked:
            return
        self.seen[uid] = version
        if uid in self.written and _newer_or_same(version, self.written[uid][0]):
            del self.written[uid]

    def forget(self, uid: str) -> None:
        """The object is gone (or no longer handled): its writes are no longer followed."""
        self.tracked.discard(uid)
        self.written.pop(uid, None)
        self.seen.pop(uid, None)

    def lagging(self, now: float | None = None) -> list[str]:
        """Uids whose written version the watch has not delivered for `stale_after` seconds."""
        now = time.monotonic() if now is None else now
        written = dict(self.written)  # a copy: the health thread reads while the loop writes
        return [uid for uid, (_, at) in written.items() if now - at > self.stale_after]


@dataclass
class Health:
    """Everything the health endpoints judge, updated by the event loop and read by the
    server's thread (plain attribute reads and writes of immutable values)."""

    queues: dict[str, Callable[[], float]] = field(default_factory=dict)
    """By queue name: seconds its keys have been ready with no worker taking any."""
    watches: WatchLag = field(default_factory=WatchLag)
    drain_stall: float = DRAIN_STALL_SECONDS
    loop_stall: float = LOOP_STALL_SECONDS
    api_grace: float = API_GRACE_SECONDS
    tick: float | None = None
    """When the event loop last ran its tick (None before the operator started)."""
    loop_lag: float = 0.0
    """How late the latest tick ran, in seconds."""
    api_failing: float | None = None
    """When the current run of failed API checks began (None: the latest one succeeded)."""
    api_error: str = ""
    """Why the latest check failed ("" when it succeeded)."""
    caches_synced: bool = False
    """Whether the caches hold every watched object as of the operator's first LIST."""

    def liveness(self, now: float | None = None) -> dict[str, str]:
        """Failing checks of liveness, each with why (empty: alive)."""
        now = time.monotonic() if now is None else now
        failing: dict[str, str] = {}
        if self.tick is not None and now - self.tick > self.loop_stall:
            failing["eventLoop"] = f"no tick for {now - self.tick:.0f}s (blocked)"
        stalled = {name: seconds() for name, seconds in list(self.queues.items())}
        if stuck := sorted(name for name, age in stalled.items() if age > self.drain_stall):
            failing["queues"] = (
                f"not draining (keys ready for over {self.drain_stall:g}s, none taken): "
                f"{', '.join(stuck)}"
            )
        if lagging := self.watches.lagging(now):
            failing["watches"] = (
                f"{len(lagging)} own writes not delivered by the watch for over "
                f"{self.watches.stale_after:g}s"
            )
        return failing

    def readiness(self, now: float | None = None) -> dict[str, str]:
        """Failing checks of readiness: liveness's, caches not synced yet, and the API server
        unreachable."""
        now = time.monotonic() if now is None else now
        failing = self.liveness(now)
        if self.tick is None:
            failing["started"] = "the operator is starting"
        if not self.caches_synced:
            failing["caches"] = "not synced: not every watched resource is listed yet"
        since = self.api_failing
        if since is not None and now - since > self.api_grace:
            failing["apiServer"] = f"failing for {now - since:.0f}s: {self.api_error}"
        return failing

    def report(self, failing: Mapping[str, str]) -> dict[str, Any]:
        """The JSON body of an endpoint's answer."""
        return {
            "status": "failing" if failing else "ok",
            "failing": dict(failing),
            "queueStalledSeconds": {
                name: round(oldest(), 3) for name, oldest in list(self.queues.items())
            },
            "loopLagSeconds": round(self.loop_lag, 3),
        }

    async def run_checks(self, check_api: Callable[[], Any]) -> None:
        """Tick every `TICK_SECONDS` (recording how late each tick runs) and ask the API
        server (`check_api()`: list one of the operator's resources) every
        `API_CHECK_SECONDS`, every tick while it fails; runs until cancelled."""
        loop = asyncio.get_running_loop()
        next_check = 0.0
        while True:
            before = loop.time()
            self.tick = time.monotonic()
            if before >= next_check:
                try:
                    await asyncio.wait_for(check_api(), API_CHECK_SECONDS)
                except Exception as exc:
                    self.api_error = str(exc) or type(exc).__name__
                    if self.api_failing is None:
                        log.warning("API server check failed: %s", self.api_error)
                        self.api_failing = time.monotonic()
                    next_check = loop.time() + TICK_SECONDS
                else:
                    if self.api_failing is not None:
                        log.info("API server answers again")
                    self.api_failing, self.api_error = None, ""
                    next_check = loop.time() + API_CHECK_SECONDS
            slept = loop.time()
            await asyncio.sleep(TICK_SECONDS)
            self.loop_lag = max(0.0, loop.time() - slept - TICK_SECONDS)


def _page(judge: Callable[[], Mapping[str, str]], health: Health) -> Callable[[], Page]:
    """The page of one endpoint: 200 when `judge()` finds nothing failing, else 503."""

    def render() -> Page:
        failing = judge()
        body = json.dumps(health.report(failing)).encode()
        return 503 if failing else 200, "application/json", body

    return render


@contextlib.contextmanager
def serving(health: Health, port: int, host: str = "0.0.0.0") -> Iterator[PageServer]:
    """Serve /healthz and /readyz from a daemon thread while the block runs."""
    pages = {"/healthz": _page(health.liveness, health), "/readyz": _page(health.readiness, health)}
    server = PageServer(host, port, pages, "health")
    try:
        yield server
    finally:
        server.close()
