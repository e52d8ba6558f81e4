"""The batcher's scheduling: Triton's dynamic batching, continuous batching, bounds, drain.

The batcher runs for real; its forward is a recorder that notes which works each batch
held (and, when asked, holds a batch until released, as a busy model would).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

import pytest

from bigmodel.serving.batcher import Batcher, Closed, QueueFull, Work
from bigmodel.serving.metrics import ServingMetrics


class Rows(Work):
    """A work of `rows` rows that needs `steps` batches (1: an inference)."""

    def __init__(self, name: str, rows: int = 1, steps: int = 1) -> None:
        self.name = name
        self._rows = rows
        self.steps = steps

    @property
    def rows(self) -> int:
        return self._rows


class Recorder:
    """The forward: records each batch's work names; holds batches while `held`."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.released = asyncio.Event()
        self.released.set()
        self.fail_on: str | None = None
        self.refuse: str | None = None

    def hold(self) -> None:
        self.released.clear()

    async def __call__(self, works: Sequence[Rows]) -> float:
        self.batches.append([work.name for work in works])
        await self.released.wait()
        if self.fail_on in self.batches[-1]:
            raise RuntimeError("the device failed")
        for work in works:
            work.steps -= 1
            work.done = work.steps == 0
            if work.name == self.refuse:
                work.error, work.done = ValueError("this work failed"), True
        return 0.001


async def until(condition: Callable[[], bool]) -> None:
    """Let the event loop run until `condition` holds (a bounded number of turns)."""
    for _ in range(10_000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


class Harness:
    def __init__(self, batcher: Batcher[Rows], recorder: Recorder) -> None:
        self.batcher = batcher
        self.recorder = recorder
        self.tasks: dict[str, asyncio.Task[None]] = {}

    def submit(self, work: Rows) -> asyncio.Task[None]:
        self.tasks[work.name] = asyncio.create_task(self.batcher.submit(work))
        return self.tasks[work.name]

    async def started(self, count: int) -> None:
        """Until `count` batches have started."""
        await until(lambda: len(self.recorder.batches) >= count)

    async def finish(self) -> None:
        self.recorder.released.set()
        await asyncio.wait_for(asyncio.gather(*self.tasks.values()), 10)


@asynccontextmanager
async def harness(
    max_batch_size: int = 4, max_queue_delay: float = 0.0, max_queue_size: int = 100
) -> AsyncIterator[Harness]:
    recorder = Recorder()
    batcher: Batcher[Rows] = Batcher(
        recorder,
        ServingMetrics(),
        max_batch_size=max_batch_size,
        max_queue_delay=max_queue_delay,
        max_queue_size=max_queue_size,
    )
    scheduling = asyncio.create_task(batcher.run())
    try:
        yield Harness(batcher, recorder)
    finally:
        scheduling.cancel()


async def test_queued_works_run_in_arrival_order_up_to_the_max_batch_size() -> None:
    async with harness(max_batch_size=2) as h:
        h.recorder.hold()
        h.submit(Rows("a"))
        await h.started(1)
        for name in "bcd":
            h.submit(Rows(name))
        await until(lambda: h.batcher.queued == 3)
        await h.finish()
    assert h.recorder.batches == [["a"], ["b", "c"], ["d"]]


async def test_a_work_is_never_split_and_none_behind_it_overtakes() -> None:
    async with harness(max_batch_size=4) as h:
        h.recorder.hold()
        h.submit(Rows("a"))
        await h.started(1)
        h.submit(Rows("b", rows=3))
        h.submit(Rows("c", rows=2))
        h.submit(Rows("d", rows=1))
        await until(lambda: h.batcher.queued == 3)
        await h.finish()
    assert h.recorder.batches == [["a"], ["b"], ["c", "d"]]


async def test_a_lone_request_on_an_idle_device_runs_at_once_whatever_the_delay() -> None:
    async with harness(max_batch_size=4, max_queue_delay=60) as h:
        h.submit(Rows("a"))
        await h.finish()  # well before the 60 s delay
    assert h.recorder.batches == [["a"]]


async def test_with_a_queue_delay_requests_that_came_while_busy_wait_to_fill_up() -> None:
    async with harness(max_batch_size=4, max_queue_delay=60) as h:
        h.recorder.hold()
        h.submit(Rows("x"))
        await h.started(1)
        h.submit(Rows("a"))
        await until(lambda: h.batcher.queued == 1)
        h.recorder.released.set()
        await h.tasks["x"]
        h.submit(Rows("b"))
        h.submit(Rows("c", rows=2))  # the batch is full: it starts without waiting 60 s
        await h.finish()
    assert h.recorder.batches == [["x"], ["a", "b", "c"]]


async def test_a_batch_that_cannot_grow_starts_without_waiting_for_the_delay() -> None:
    async with harness(max_batch_size=4, max_queue_delay=60) as h:
        h.recorder.hold()
        h.submit(Rows("x"))
        await h.started(1)
        h.submit(Rows("a", rows=3))
        h.submit(Rows("b", rows=2))  # does not fit next to a: a's batch is as big as it gets
        await until(lambda: h.batcher.queued == 2)
        h.recorder.released.set()
        await h.started(2)
        h.submit(Rows("c", rows=2))  # b's batch then waits for more, and c fills it
        await h.finish()
    assert h.recorder.batches == [["x"], ["a"], ["b", "c"]]


async def test_without_a_queue_delay_the_model_takes_what_is_queued_at_once() -> None:
    async with harness(max_batch_size=4, max_queue_delay=0) as h:
        h.submit(Rows("a"))
        await h.started(1)
        h.submit(Rows("b"))
        await h.finish()
    assert h.recorder.batches == [["a"], ["b"]]


async def test_a_request_that_came_while_busy_runs_once_the_delay_has_passed() -> None:
    async with harness(max_batch_size=4, max_queue_delay=0.02) as h:
        h.recorder.hold()
        h.submit(Rows("x"))
        await h.started(1)
        h.submit(Rows("a"))
        await until(lambda: h.batcher.queued == 1)
        await h.finish()
    assert h.recorder.batches == [["x"], ["a"]]


async def test_a_full_queue_refuses_the_next_work() -> None:
    async with harness(max_queue_size=2) as h:
        h.recorder.hold()
        h.submit(Rows("a"))
        await h.started(1)
        h.submit(Rows("b"))
        h.submit(Rows("c"))
        await until(lambda: h.batcher.queued == 2)
        with pytest.raises(QueueFull):
            await h.batcher.submit(Rows("d"))
        await h.finish()


async def test_a_work_larger_than_the_max_batch_size_is_refused() -> None:
    async with harness(max_batch_size=4) as h:
        with pytest.raises(ValueError, match="never fits"):
            await h.batcher.submit(Rows("big", rows=5))


async def test_a_closed_batcher_finishes_its_works_and_refuses_new_ones() -> None:
    async with harness(max_batch_size=1) as h:
        h.recorder.hold()
        h.submit(Rows("running"))
        await h.started(1)
        h.submit(Rows("queued"))
        await until(lambda: h.batcher.queued == 1)
        h.batcher.close()
        with pytest.raises(Closed):
            await h.batcher.submit(Rows("late"))
        await h.finish()
    assert h.recorder.batches == [["running"], ["queued"]]


async def test_newcomers_join_a_running_generation_between_its_steps() -> None:
    async with harness(max_batch_size=4, max_queue_delay=60) as h:
        h.recorder.hold()
        h.submit(Rows("x"))
        await h.started(1)
        h.submit(Rows("generation", steps=3))
        h.submit(Rows("filler", rows=3))  # fills the first batch
        await until(lambda: h.batcher.queued == 2)
        h.recorder.released.set()  # x ends; the next batch is held
        h.recorder.hold()
        await h.started(2)
        h.submit(Rows("newcomer"))
        await until(lambda: h.batcher.queued == 1)
        await h.finish()
    # The running generation never waits for the 60 s delay, and goes first.
    assert h.recorder.batches == [
        ["x"],
        ["generation", "filler"],
        ["generation", "newcomer"],
        ["generation"],
    ]


async def test_a_failed_batch_fails_its_works_and_the_next_batch_runs() -> None:
    async with harness() as h:
        h.recorder.fail_on = "bad"
        with pytest.raises(RuntimeError, match="device failed"):
            await h.batcher.submit(Rows("bad"))
        await h.batcher.submit(Rows("good"))
    assert h.recorder.batches == [["bad"], ["good"]]


async def test_a_work_whose_client_left_while_queued_is_not_run() -> None:
    async with harness(max_batch_size=1) as h:
        h.recorder.hold()
        h.submit(Rows("a"))
        await h.started(1)
        h.submit(Rows("gone"))
        await until(lambda: h.batcher.queued == 1)
        h.tasks.pop("gone").cancel()
        h.submit(Rows("b"))
        await h.finish()
    assert h.recorder.batches == [["a"], ["b"]]


async def test_a_work_that_failed_alone_fails_alone() -> None:
    async with harness(max_queue_delay=10) as h:
        h.recorder.refuse = "bad"
        bad, good = h.submit(Rows("bad")), h.submit(Rows("good", rows=3))
        with pytest.raises(ValueError, match="this work failed"):
            await bad
        await good
    assert h.recorder.batches == [["bad", "good"]]


class Counted(Rows):
    """Rows that count how often the event loop heard of their steps."""

    reported = 0

    def stepped(self) -> None:
        self.reported += 1


async def test_the_worker_runs_a_generations_steps_back_to_back_while_nothing_changes() -> None:
    handoffs: list[list[str]] = []

    def steps(works: Sequence[Counted]) -> float:
        """The device worker's side: steps while the batcher lets it continue."""
        handoffs.append([work.name for work in works])
        while True:
            for work in works:
                work.steps -= 1
                work.done = work.steps == 0
            if not batcher.continues(works, 0.001):
                return 0.001

    batcher: Batcher[Counted] = Batcher(
        lambda works: asyncio.to_thread(steps, works),
        ServingMetrics(),
        max_batch_size=4,
        max_queue_delay=0.0,
        max_queue_size=10,
    )
    scheduling = asyncio.create_task(batcher.run())
    try:
        work = Counted("a", steps=5)
        await asyncio.wait_for(batcher.submit(work), 10)
    finally:
        scheduling.cancel()
    assert handoffs == [["a"]], "five steps, one hand-off from the event loop"
    assert work.reported == 5, "every step still reported on the loop (a stream sends each token)"


class Shrinking(Counted):
    """A generation of several prompts, one of which finishes at each step."""

    @property
    def rows(self) -> int:
        return self.steps


async def test_back_to_back_steps_are_counted_with_the_rows_they_ran() -> None:
    def steps(works: Sequence[Shrinking]) -> float:
        while True:
            for work in works:
                work.steps -= 1  # a prompt finishes: the work has a row less from now on
                work.done = work.steps == 0
            if not batcher.continues(works, 0.001):
                return 0.001

    metrics = ServingMetrics()
    batcher: Batcher[Shrinking] = Batcher(
        lambda works: asyncio.to_thread(steps, works),
        metrics,
        max_batch_size=4,
        max_queue_delay=0.0,
        max_queue_size=10,
    )
    scheduling = asyncio.create_task(batcher.run())
    try:
        await asyncio.wait_for(batcher.submit(Shrinking("a", steps=3)), 10)
    finally:
        scheduling.cancel()
    sample = metrics.registry.get_sample_value
    count, total = (
        sample("bigmodel_serving_batch_size_count"),
        sample("bigmodel_serving_batch_size_sum"),
    )
    assert (count, total) == (3, 3 + 2 + 1), "each step counts the rows it ran, not those left"


async def test_a_queued_or_a_withdrawn_work_ends_the_back_to_back_steps() -> None:
    async with harness(max_batch_size=1) as h:
        await asyncio.sleep(0)  # the batcher's loop starts
        running = Rows("a", steps=3)
        running.future = asyncio.get_running_loop().create_future()
        assert await asyncio.to_thread(h.batcher.continues, [running], 0.001)
        running.future.cancel()  # its client went away
        assert not await asyncio.to_thread(h.batcher.continues, [running], 0.001)

        h.recorder.hold()
        h.submit(Rows("b"))
        await h.started(1)
        h.submit(Rows("c"))  # waits: the batch is full
        await until(lambda: h.batcher.queued == 1)
        steady = Rows("d", steps=3)
        steady.future = asyncio.get_running_loop().create_future()
        assert not await asyncio.to_thread(h.batcher.continues, [steady], 0.001)
        await h.finish()
