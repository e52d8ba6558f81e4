"""The loop every kind shares: one work queue of `namespace/name` keys and a fixed pool of
workers that pop a key, run the kind's `reconcile(key) -> requeue after`, and put the key
back on a timer, or after its back-off when the reconcile failed. It replaces a daemon per
object: an object costs a cache entry and, while it waits for a timer, one heap entry."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol

from bigmodel.controller.k8s import API_FAILURES
from bigmodel.controller.queuemetrics import WorkQueueMetrics
from bigmodel.controller.workqueue import WorkQueue

Reconcile = Callable[[str], Awaitable[float | None]]
"""Look at one key's object and write the difference; seconds until the next look (None:
only when something changes)."""

WORKERS = 32
"""Workers per kind: reconciles of different objects run concurrently up to this. A
reconcile mostly waits for the API server, so a burst of new jobs goes faster with more of
them (at 300 jobs: 1.6x the bare client with 32, 2.1x with 4, `benchmarks/README.md`);
the client's 32 connections (`k8s.CONNECTIONS`) bound them further in effect."""
WORKERS_ENV = "BIGMODEL_WORKERS"
TELEMETRY_WORKERS = 8
"""Telemetry rounds running at once (each scrapes one object's pods)."""
TELEMETRY_WORKERS_ENV = "BIGMODEL_TELEMETRY_WORKERS"


class Controller:
    """A queue named `name` (the metrics' `name` label) and `workers` workers running
    `reconcile` on its keys while started."""

    def __init__(
        self,
        name: str,
        reconcile: Reconcile,
        workers: int,
        metrics: WorkQueueMetrics,
        logger: logging.Logger | None = None,
    ) -> None:
        self.name, self.reconcile, self.workers = name, reconcile, workers
        self.queue: WorkQueue[str] = WorkQueue()
        self.queue.observer = metrics.observer(name, self.queue.running)
        self.logger = logger or logging.getLogger(f"bigmodel.{name}")
        self._tasks: list[asyncio.Task[None]] = []
        self._since = 0.0
        """When the workers started (monotonic)."""

    @property
    def started(self) -> bool:
        """Whether the workers run."""
        return bool(self._tasks)

    def start(self, context: contextvars.Context | None = None) -> None:
        """Start the workers, each in a copy of `context` (None: the current one); no-op
        when they run."""
        if not self._tasks:
            self._since = time.monotonic()
            self._tasks = [
                asyncio.create_task(
                    self._work(),
                    name=f"{self.name}-worker-{i}",
                    context=None if context is None else context.copy(),
                )
                for i in range(self.workers)
            ]

    async def stop(self) -> None:
        """Stop the workers, cancelling the reconciles in flight (their keys stay queued)."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def stalled(self) -> float:
        """Seconds keys have been ready with no worker taking any, since the workers started
        (0 while they do not run: nobody is expected to drain the queue)."""
        if not self._tasks:
            return 0.0
        return min(self.queue.stalled(), time.monotonic() - self._since)

    async def _work(self) -> None:
        queue = self.queue
        while True:
            key = await queue.get()
            try:
                after = await self.reconcile(key)
            except asyncio.CancelledError:
                queue.add(key)  # looked at again by whoever runs the workers next
                raise
            except API_FAILURES as exc:
                queue.add_rate_limited(key)
                self._failed(key, exc, exc_info=False)
            except Exception as exc:
                queue.add_rate_limited(key)
                self._failed(key, exc, exc_info=True)
            else:
                queue.forget(key)
                if after is not None:
                    queue.add_after(key, after)
            finally:
                queue.done(key)

    def _failed(self, key: str, exc: Exception, exc_info: bool) -> None:
        retries = self.queue.failures(key)
        self.logger.warning(
            "%s: reconcile failed (%d in a row), retrying after back-off: %s",
            key,
            retries,
            exc,
            exc_info=exc_info,
        )


class Kind(Protocol):
    """What the operator needs of each kind's controller to run it under a leader."""

    @property
    def controllers(self) -> tuple[Controller, ...]:
        """Its queues with their workers; the first reconciles the kind's keys."""
        ...

    def cached(self) -> Iterable[str]:
        """The key of every object of the kind in the cache."""
        ...

    def reset(self) -> None:
        """Drop the state kept between looks (it may be stale: another replica may have
        led meanwhile); the next look at each object starts from the caches."""
        ...
