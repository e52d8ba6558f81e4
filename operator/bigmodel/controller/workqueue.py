"""A deduplicating, rate-limited work queue of keys, as controller-runtime's (client-go's
`workqueue`): the one place the controller keeps what is to be looked at, and when.

- A key is queued once however many times it is added before a worker takes it.
- A key is never processed by two workers at once: one added while being processed is
  processed again once `done()`.
- `add_after()` keeps timers (requeue after, back-off, deadlines, TTL, telemetry rounds) in
  one delay heap; a key waits for its earliest timer only.
- `add_rate_limited()` backs a failing key off exponentially; `forget()` resets it.

The queue itself never sleeps: `pop(now)` and `next_due(now)` take the time, so tests drive
it with a clock of their own; `get()` waits on the event loop for the workers.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

K = TypeVar("K", bound=Hashable)

BASE_DELAY = 1.0
"""Back-off before the first retry of a failing key; it doubles with each failure."""
MAX_DELAY = 300.0
"""Longest back-off of a failing key."""


class QueueObserver(Protocol):
    """What the queue reports (its Prometheus metrics implement it)."""

    def added(self) -> None: ...
    def retried(self) -> None: ...
    def depth(self, depth: int) -> None: ...
    def waited(self, seconds: float) -> None: ...
    def worked(self, seconds: float) -> None: ...


class Unobserved:
    """An observer that records nothing (tests, or a queue nobody measures)."""

    def added(self) -> None:
        pass

    def retried(self) -> None:
        pass

    def depth(self, depth: int) -> None:
        pass

    def waited(self, seconds: float) -> None:
        pass

    def worked(self, seconds: float) -> None:
        pass


@dataclass
class WorkQueue(Generic[K]):
    """Keys to process now (FIFO), keys being processed, and timers; see the module."""

    clock: Callable[[], float] = time.monotonic
    observer: QueueObserver = field(default_factory=Unobserved)
    base_delay: float = BASE_DELAY
    max_delay: float = MAX_DELAY
    _ready: deque[K] = field(default_factory=deque)
    _queued_at: dict[K, float] = field(default_factory=dict)
    """Keys waiting for a worker (in `_ready`, or to be once their processing ends), since."""
    _processing: dict[K, float] = field(default_factory=dict)
    """Keys a worker holds, since."""
    _timers: list[tuple[float, int, K]] = field(default_factory=list)
    _due: dict[K, float] = field(default_factory=dict)
    """Each timed key's earliest timer (heap entries that do not match are stale)."""
    _failures: dict[K, int] = field(default_factory=dict)
    _order: itertools.count[int] = field(default_factory=itertools.count)
    _last_pop: float | None = None
    """When a worker last took a key."""
    _wakeup: asyncio.Event | None = None
    """Set when a key may have become ready (created on first `get()`, in its loop)."""

    def add(self, key: K) -> None:
        """Queue `key` now, unless it already waits for a worker."""
        if key in self._queued_at:
            return
        self.observer.added()
        self._queued_at[key] = self.clock()
        if key not in self._processing:
            self._ready.append(key)
            self._report()

    def add_after(self, key: K, seconds: float) -> None:
        """Queue `key` in `seconds` (now when <= 0); only its earliest timer counts."""
        if seconds <= 0:
            self.add(key)
            return
        due = self.clock() + seconds
        if self._due.get(key, float("inf")) <= due:
            return
        self._due[key] = due
        heapq.heappush(self._timers, (due, next(self._order), key))
        self._report()

    def add_rate_limited(self, key: K) -> None:
        """Queue a key whose processing failed, after its back-off (doubling per failure)."""
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        self.observer.retried()
        self.add_after(key, min(self.base_delay * 2**failures, self.max_delay))

    def forget(self, key: K) -> None:
        """`key` was processed successfully: its next failure backs off from the start."""
        self._failures.pop(key, None)

    def failures(self, key: K) -> int:
        """How many times in a row processing `key` has failed."""
        return self._failures.get(key, 0)

    def pop(self, now: float | None = None) -> K | None:
        """The next key ready at `now`, which the caller now processes (then `done()`); None
        when no key is ready."""
        now = self.clock() if now is None else now
        self._fire(now)
        if not self._ready:
            return None
        key = self._ready.popleft()
        self.observer.waited(now - self._queued_at.pop(key))
        self._processing[key] = self._last_pop = now
        self._report()
        return key

    def done(self, key: K, now: float | None = None) -> None:
        """The caller has finished processing `key`: queue it again if added meanwhile."""
        now = self.clock() if now is None else now
        self.observer.worked(now - self._processing.pop(key))
        if key in self._queued_at:
            self._ready.append(key)
            self._report()

    def next_due(self, now: float | None = None) -> float | None:
        """Seconds until a key is ready (0: now), None when nothing waits."""
        now = self.clock() if now is None else now
        if self._ready:
            return 0.0
        self._fire(now)
        if self._ready:
            return 0.0
        return max(0.0, self._timers[0][0] - now) if self._timers else None

    async def get(self) -> K:
        """Wait for the next ready key (see `pop`)."""
        if self._wakeup is None:
            self._wakeup = asyncio.Event()
        while True:
            key = self.pop()
            if key is not None:
                if self._ready:  # another worker may take the next one
                    self._wakeup.set()
                return key
            self._wakeup.clear()
            wait = self.next_due()
            try:
                async with asyncio.timeout(wait):
                    await self._wakeup.wait()
            except TimeoutError:
                pass

    def depth(self) -> int:
        """Keys ready for a worker now."""
        return len(self._ready)

    def oldest_ready(self, now: float | None = None) -> float:
        """Seconds the longest-waiting ready key has waited for a worker (0: none waits)."""
        now = self.clock() if now is None else now
        ready = list(self._ready)  # a copy: the health thread reads while the loop writes
        return max((now - self._queued_at.get(key, now) for key in ready), default=0.0)

    def stalled(self, now: float | None = None) -> float:
        """Seconds keys have been ready with no worker taking any (0: the queue drains or
        is empty): a burst that keeps every worker busy is not a stall, workers that stopped
        taking keys are."""
        now = self.clock() if now is None else now
        oldest = self.oldest_ready(now)
        if self._last_pop is None:
            return oldest
        return min(oldest, now - self._last_pop)

    def running(self, now: float | None = None) -> list[float]:
        """Seconds each key being processed has been processed for."""
        now = self.clock() if now is None else now
        return [now - since for since in list(self._processing.values())]

    def timed(self) -> int:
        """Keys waiting for a timer."""
        return len(self._due)

    def _fire(self, now: float) -> None:
        """Queue the keys whose timer is due."""
        while self._timers and self._timers[0][0] <= now:
            due, _, key = heapq.heappop(self._timers)
            if self._due.get(key) == due:
                del self._due[key]
                self.add(key)

    def _report(self) -> None:
        self.observer.depth(len(self._ready))
        if self._wakeup is not None:
            self._wakeup.set()
