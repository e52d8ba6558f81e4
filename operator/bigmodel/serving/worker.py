"""One worker thread per device: the model's loads and forwards run there, off the event loop.

The event loop only parses, schedules and answers, so `/v2/health/*` and `/metrics` stay
fast while a forward runs. The thread is a daemon: a SIGTERM during a long model load does
not have to wait for the load to finish before the process exits.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_Job = tuple[Callable[[], Any], asyncio.AbstractEventLoop, "asyncio.Future[Any]"]


class DeviceWorker:
    """Runs callables one at a time, in order, on its own thread; awaitable from the loop."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    async def call(self, function: Callable[[], T]) -> T:
        """`function()` on the worker thread; its exception is raised here."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((function, loop, future))
        return await future

    def close(self, timeout: float = 5.0) -> bool:
        """End the thread after the jobs already queued; whether it ended within `timeout`.

        Joined, not left to die with the interpreter: a thread that has run torch code and
        exits while the process finalizes can abort it (SIGABRT instead of exit 0).
        """
        self._jobs.put(None)
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            function, loop, future = job
            result: Any = None
            error: Exception | None = None
            try:
                result = function()
            except Exception as raised:  # handed to the awaiting coroutine
                error = raised
            try:
                loop.call_soon_threadsafe(_settle, future, result, error)
            except RuntimeError:  # the loop is closed: nobody waits any more
                return


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
