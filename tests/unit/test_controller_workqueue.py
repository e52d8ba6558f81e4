"""The work queue: deduplicating, one worker per key at a time, timers in one delay heap,
per-key exponential back-off; driven by a clock of the test's own (no sleeps)."""

from __future__ import annotations

import asyncio

from bigmodel.controller.workqueue import WorkQueue


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def queue(**kwargs: float) -> tuple[WorkQueue[str], Clock]:
    clock = Clock()
    return WorkQueue(clock=clock, **kwargs), clock


def drain(q: WorkQueue[str]) -> list[str]:
    """Pop every ready key and finish it at once."""
    popped = []
    while (key := q.pop()) is not None:
        popped.append(key)
        q.done(key)
    return popped


def test_a_key_added_many_times_is_queued_once() -> None:
    q, _ = queue()
    for key in ("a", "b", "a", "a", "b"):
        q.add(key)
    assert q.depth() == 2
    assert drain(q) == ["a", "b"]


def test_a_key_added_while_processed_is_processed_again_after_not_concurrently() -> None:
    q, _ = queue()
    q.add("a")
    assert q.pop() == "a"
    q.add("a")
    assert q.pop() is None  # not handed to a second worker
    q.done("a")
    assert q.pop() == "a"
    q.done("a")
    assert q.pop() is None


def test_a_key_finished_without_new_adds_is_not_queued_again() -> None:
    q, _ = queue()
    q.add("a")
    q.done(q.pop() or "")
    assert q.pop() is None and q.next_due() is None


def test_a_timer_queues_its_key_when_due() -> None:
    q, clock = queue()
    q.add_after("a", 30)
    assert q.pop() is None
    assert q.next_due() == 30
    clock.now += 29.9
    assert q.pop() is None
    clock.now += 0.1
    assert q.pop() == "a"


def test_a_key_waits_for_its_earliest_timer_only() -> None:
    q, clock = queue()
    q.add_after("a", 300)
    q.add_after("a", 10)
    q.add_after("a", 60)
    assert q.next_due() == 10
    clock.now += 10
    assert drain(q) == ["a"]
    clock.now += 1000
    assert drain(q) == []  # the later timers were replaced by the earlier one


def test_timers_fire_in_time_order() -> None:
    q, clock = queue()
    q.add_after("late", 20)
    q.add_after("early", 5)
    q.add_after("now", 0)
    clock.now += 25
    assert drain(q) == ["now", "early", "late"]


def test_failures_back_off_exponentially_up_to_the_cap_and_success_forgets_them() -> None:
    q, clock = queue(base_delay=1, max_delay=8)
    waits = []
    for _ in range(5):
        q.add_rate_limited("a")
        waits.append(q.next_due())
        clock.now += waits[-1] or 0
        assert q.pop() == "a"
        q.done("a")
    assert waits == [1, 2, 4, 8, 8]
    assert q.failures("a") == 5
    q.forget("a")
    q.add_rate_limited("a")
    assert q.next_due() == 1


def test_back_off_is_per_key() -> None:
    q, _ = queue(base_delay=1)
    for _ in range(3):
        q.add_rate_limited("a")
    q.add_rate_limited("b")
    assert (q.failures("a"), q.failures("b")) == (3, 1)


def test_the_oldest_ready_key_tells_how_long_the_queue_has_not_drained() -> None:
    q, clock = queue()
    assert q.oldest_ready() == 0
    q.add("a")
    clock.now += 5
    q.add("b")
    clock.now += 10
    assert q.oldest_ready() == 15
    q.done(q.pop() or "")
    assert q.oldest_ready() == 10
    q.add_after("c", 100)  # a timer not due yet is not waiting for a worker
    assert q.oldest_ready() == 10


def test_a_queue_whose_workers_keep_taking_keys_is_not_stalled_however_long_it_is() -> None:
    q, clock = queue()
    for key in "abcdef":
        q.add(key)
    for _ in range(5):  # a burst: one key taken every 30 s, the last waits 150 s
        clock.now += 30
        q.done(q.pop() or "")
    assert q.oldest_ready() == 150
    assert q.stalled() == 0
    clock.now += 61  # then no worker takes any
    assert q.stalled() == 61


def test_an_empty_queue_is_not_stalled_and_keys_never_taken_are() -> None:
    q, clock = queue()
    clock.now += 1000
    assert q.stalled() == 0
    q.add("a")
    clock.now += 70
    assert q.stalled() == 70


def test_keys_in_process_report_how_long_they_run() -> None:
    q, clock = queue()
    q.add("a")
    q.add("b")
    q.pop()
    clock.now += 3
    q.pop()
    clock.now += 2
    assert sorted(q.running()) == [2, 5]


def test_get_waits_for_a_key_added_later() -> None:
    q: WorkQueue[str] = WorkQueue()

    async def scenario() -> str:
        waiter = asyncio.create_task(q.get())
        await asyncio.sleep(0)
        assert not waiter.done()
        q.add("a")
        return await asyncio.wait_for(waiter, 60)

    assert asyncio.run(scenario()) == "a"


def test_get_wakes_for_a_timer_set_while_waiting() -> None:
    q: WorkQueue[str] = WorkQueue()

    async def scenario() -> str:
        waiter = asyncio.create_task(q.get())
        await asyncio.sleep(0)
        q.add_after("a", 0.01)
        return await asyncio.wait_for(waiter, 60)

    assert asyncio.run(scenario()) == "a"
