"""Dynamic batching with Triton's semantics, plus continuous batching of generations.

A `Work` is one request's rows (an inference's batch, a completion's prompts). When the
model is free, the scheduler takes queued works in arrival order while their rows fit in
`max_batch_size`; a work is never split, and one that does not fit waits for the next batch
(no overtaking). A work that arrives while the device is idle runs at once: waiting could
only add latency. Works that arrived while the device was busy are gathered: with fewer
rows than `max_batch_size` and `max_queue_delay` > 0, the batch waits for more at most
`max_queue_delay` after the oldest queued work arrived. A generation stays in the
running set step after step until it finishes: running works go first, newcomers join
between steps, and while any run the next step starts at once (newcomers would join at the
following step anyway, so waiting would only slow the running ones). While nothing would
change (no work finished or withdrawn, none queued), the device worker runs the next step
without waiting for a turn of the event loop (`continues`): on a busy machine each hand-off
between the two threads costs a scheduling delay, once per token.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, Protocol, TypeVar

log = logging.getLogger(__name__)


class QueueFull(Exception):
    """The queue already holds `max_queue_size` works."""


class Closed(Exception):
    """The batcher drains: it finishes what it has and takes nothing new."""


class Work:
    """One request's rows, scheduled as a whole; `done` when its last step has run."""

    done: bool = False
    error: Exception | None = None
    """Why this work alone failed (its forward's other works carry on)."""
    queued_at: float = 0.0
    arrived_idle: bool = False
    """It came while the device had nothing to do: it runs without waiting for company."""
    future: asyncio.Future[None]

    @property
    def rows(self) -> int:
        """Rows it adds to the next forward batch."""
        raise NotImplementedError

    def stepped(self) -> None:
        """Called on the event loop after each batch it was part of (a stream reads it)."""


class BatchObserver(Protocol):
    """What the batcher reports (the metrics); every method is cheap and non-blocking."""

    def waiting_changed(self, delta: int) -> None:
        """Works queued went up or down by `delta`."""

    def running_changed(self, delta: int) -> None:
        """Works in the running batch went up or down by `delta`."""

    def queued_for(self, seconds: float) -> None:
        """A work waited `seconds` between its arrival and its first batch."""

    def batch(self, rows: int, seconds: float) -> None:
        """A forward of `rows` rows took `seconds`."""


W = TypeVar("W", bound=Work)


class Batcher(Generic[W]):
    """The scheduling loop between the request handlers and the device worker."""

    def __init__(
        self,
        run_batch: Callable[[Sequence[W]], Awaitable[float]],
        observer: BatchObserver,
        *,
        max_batch_size: int,
        max_queue_delay: float,
        max_queue_size: int,
    ) -> None:
        self._run_batch = run_batch
        """Runs one forward over the works (advancing each); returns its seconds."""
        self._observer = observer
        self.max_batch_size = max_batch_size
        self.max_queue_delay = max_queue_delay
        self.max_queue_size = max_queue_size
        self._queue: deque[W] = deque()
        self._running: list[W] = []
        self._wake = asyncio.Event()
        self._closed = False
        self._idle = True
        """Nothing queued or running: the next work to arrive runs at once."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._step_rows = 0
        """Rows of the step being run, counted before it runs (a step may finish some rows);
        written by `_step` before a run of steps and by `continues` on the device worker."""

    @property
    def queued(self) -> int:
        """Works waiting for their first batch."""
        return len(self._queue)

    @property
    def running(self) -> int:
        """Works in the batch being run (or, between steps, still generating)."""
        return len(self._running)

    async def submit(self, work: W) -> None:
        """Queue `work` and wait until it is done; QueueFull or Closed when refused."""
        await self.enqueue(work)

    def enqueue(self, work: W) -> asyncio.Future[None]:
        """Queue `work` (QueueFull or Closed when refused); its future ends with it.

        Cancelling the future withdraws the work: it leaves the queue or the running batch
        before the next step (a client that went away).
        """
        if self._closed:
            raise Closed
        if len(self._queue) >= self.max_queue_size:
            raise QueueFull
        if not 0 < work.rows <= self.max_batch_size:
            raise ValueError(f"a work of {work.rows} rows never fits a batch")
        work.future = asyncio.get_running_loop().create_future()
        work.queued_at = time.monotonic()
        work.arrived_idle = self._idle
        self._queue.append(work)
        self._observer.waiting_changed(1)
        self._wake.set()
        return work.future

    def close(self) -> None:
        """Refuse new works from now on; queued and running ones still finish."""
        self._closed = True
        self._wake.set()

    def continues(self, batch: Sequence[W], seconds: float) -> bool:
        """Whether the device worker may run `batch`'s next step at once, after a step of
        `seconds`: only when nothing would change (no work done or withdrawn, none queued, not
        closing). The step is then reported on the event loop while the next one runs.

        Called on the device worker thread: it only reads the batcher's state.
        """
        loop = self._loop
        if loop is None or self._queue or self._closed:
            return False
        if any(work.done or work.future.done() for work in batch):
            return False
        loop.call_soon_threadsafe(self._stepped, batch, self._step_rows, seconds)
        self._step_rows = sum(work.rows for work in batch)
        return True

    async def run(self) -> None:
        """Schedule batches until cancelled."""
        self._loop = asyncio.get_running_loop()
        while True:
            await self._until_work()
            if not self._running and not self._queue[0].arrived_idle:
                await self._until_full_or_delay()
            batch = self._take()
            if batch:
                await self._step(batch)

    async def _until_work(self) -> None:
        while not self._queue and not self._running:
            self._idle = True
            self._wake.clear()
            await self._wake.wait()
        self._idle = False

    def _has_room(self) -> bool:
        """Whether the next batch could still take more rows than the queue offers now."""
        rows = sum(work.rows for work in self._running)
        for work in self._queue:
            rows += work.rows
            if rows >= self.max_batch_size:
                return False
        return True

    async def _until_full_or_delay(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue and not self._closed:
            remaining = self._queue[0].queued_at + self.max_queue_delay - time.monotonic()
            if remaining <= 0 or not self._has_room():
                return
            self._wake.clear()
            # A plain timer, not wait_for(): no task per wait, and this runs per batch.
            timer = loop.call_later(remaining, self._wake.set)
            try:
                await self._wake.wait()
            finally:
                timer.cancel()

    def _take(self) -> list[W]:
        """The running works still wanted, then queued ones in order while they fit."""
        gone = [work for work in self._running if work.future.done()]
        if gone:
            self._observer.running_changed(-len(gone))
            self._running = [work for work in self._running if not work.future.done()]
        batch = list(self._running)
        rows = sum(work.rows for work in batch)
        now = time.monotonic()
        while self._queue:
            work = self._queue[0]
            if work.future.done():  # its client went away while it waited
                self._queue.popleft()
                self._observer.waiting_changed(-1)
                continue
            if rows + work.rows > self.max_batch_size:
                break
            self._queue.popleft()
            self._observer.waiting_changed(-1)
            self._observer.running_changed(1)
            self._observer.queued_for(now - work.queued_at)
            batch.append(work)
            rows += work.rows
        self._running = batch
        return batch

    def _stepped(self, batch: Sequence[W], rows: int, seconds: float) -> None:
        """A step of `rows` rows that the device worker followed with another at once (see
        `continues`)."""
        self._observer.batch(rows, seconds)
        for work in batch:
            work.stepped()

    async def _step(self, batch: list[W]) -> None:
        """One forward over `batch`; done works leave, the others stay running."""
        self._step_rows = sum(work.rows for work in batch)
        try:
            seconds = await self._run_batch(batch)
        except Exception as error:
            log.exception("forward batch failed", extra={"fields": {"rows": self._step_rows}})
            for work in batch:
                work.done = True
                if not work.future.done():
                    work.future.set_exception(error)
        else:
            self._observer.batch(self._step_rows, seconds)
        self._running = []
        for work in batch:
            work.stepped()
            if not work.done:
                self._running.append(work)
                continue
            self._observer.running_changed(-1)
            if work.future.done():
                continue
            if work.error is not None:
                work.future.set_exception(work.error)
            else:
                work.future.set_result(None)
