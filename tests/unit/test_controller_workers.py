"""The workers' loop: a key's reconcile decides when it is looked at again, a failure backs
the key off, stopping the workers keeps the keys in flight queued; the queue's metrics are
controller-runtime's."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from prometheus_client import CollectorRegistry

from bigmodel.controller.k8s import ApiError
from bigmodel.controller.queuemetrics import WorkQueueMetrics
from bigmodel.controller.workers import Controller, workers_from_env

DEADLINE = 60.0
"""Generous: these wait for conditions, never for a time."""


def make(
    reconcile: Callable[[str], Awaitable[float | None]],
) -> tuple[Controller, CollectorRegistry]:
    registry = CollectorRegistry()
    made = Controller("test", reconcile, 2, WorkQueueMetrics(registry))
    made.queue.base_delay = 0.001
    return made, registry


async def until(condition: Callable[[], bool]) -> None:
    """Poll the workers' state (they expose no event) until `condition()`."""
    async with asyncio.timeout(DEADLINE):
        while True:
            if condition():
                return
            await asyncio.sleep(0.001)


def test_a_reconcile_asking_to_be_requeued_is_looked_at_again_and_none_stops() -> None:
    looks: list[str] = []

    async def reconcile(key: str) -> float | None:
        looks.append(key)
        return 0.001 if len(looks) < 3 else None

    async def scenario() -> None:
        controller, _ = make(reconcile)
        controller.start()
        controller.queue.add("ns/a")
        await until(lambda: len(looks) == 3)
        await until(lambda: controller.queue.next_due() is None and not controller.queue.running())
        await controller.stop()

    asyncio.run(scenario())
    assert looks == ["ns/a"] * 3


def test_a_failing_reconcile_is_retried_with_back_off_then_forgotten_on_success() -> None:
    outcomes: list[Exception | None] = [ApiError(500, "boom"), RuntimeError("bug"), None]
    failures: list[int] = []

    async def scenario() -> tuple[int, float]:
        controller, registry = make(lambda key: reconcile(controller, key))
        controller.start()
        controller.queue.add("ns/a")
        await until(lambda: not outcomes and not controller.queue.running())
        await controller.stop()
        retries = registry.get_sample_value("workqueue_retries_total", {"name": "test"})
        return controller.queue.failures("ns/a"), retries or 0.0

    async def reconcile(controller: Controller, key: str) -> float | None:
        failures.append(controller.queue.failures(key))
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome
        return None

    assert asyncio.run(scenario()) == (0, 2.0)
    assert failures == [0, 1, 2]  # each look after one more failure in a row


def test_one_key_is_never_reconciled_by_two_workers_at_once() -> None:
    running: set[str] = set()
    overlaps: list[str] = []
    looks: list[str] = []

    async def reconcile(key: str) -> float | None:
        if key in running:
            overlaps.append(key)
        running.add(key)
        await asyncio.sleep(0.01)
        running.discard(key)
        looks.append(key)
        return None

    async def scenario() -> None:
        controller, _ = make(reconcile)
        controller.start()
        controller.queue.add("ns/a")
        await until(lambda: bool(running))
        controller.queue.add("ns/a")  # while it is processed: once more, after
        controller.queue.add("ns/b")
        await until(lambda: len(looks) == 3)
        await controller.stop()

    asyncio.run(scenario())
    assert not overlaps and sorted(looks) == ["ns/a", "ns/a", "ns/b"]


def test_stopping_the_workers_cancels_a_reconcile_and_keeps_its_key_queued() -> None:
    began = asyncio.Event()

    async def reconcile(key: str) -> float | None:
        began.set()
        await asyncio.sleep(3600)
        return None

    async def scenario() -> int:
        controller, _ = make(reconcile)
        controller.start()
        controller.queue.add("ns/a")
        async with asyncio.timeout(DEADLINE):
            await began.wait()
        await controller.stop()
        return controller.queue.depth()

    assert asyncio.run(scenario()) == 1


def test_the_queue_exports_controller_runtimes_workqueue_metrics() -> None:
    async def reconcile(key: str) -> float | None:
        return None

    async def scenario() -> CollectorRegistry:
        controller, registry = make(reconcile)
        controller.queue.add("ns/a")
        controller.queue.add("ns/a")
        controller.queue.add("ns/b")
        controller.start()
        await until(lambda: controller.queue.depth() == 0 and not controller.queue.running())
        await controller.stop()
        return registry

    registry = asyncio.run(scenario())
    labels = {"name": "test"}
    assert registry.get_sample_value("workqueue_adds_total", labels) == 2
    assert registry.get_sample_value("workqueue_depth", labels) == 0
    assert registry.get_sample_value("workqueue_queue_duration_seconds_count", labels) == 2
    assert registry.get_sample_value("workqueue_work_duration_seconds_count", labels) == 2
    assert registry.get_sample_value("workqueue_unfinished_work_seconds", labels) == 0
    assert registry.get_sample_value("workqueue_longest_running_processor_seconds", labels) == 0


def test_worker_counts_come_from_the_environment_and_bad_ones_are_refused() -> None:
    assert workers_from_env({}) == (32, 8)
    assert workers_from_env({"BIGMODEL_WORKERS": "16", "BIGMODEL_TELEMETRY_WORKERS": "2"}) == (
        16,
        2,
    )
    with pytest.raises(ValueError, match="BIGMODEL_WORKERS='0': must be at least 1"):
        workers_from_env({"BIGMODEL_WORKERS": "0"})
    with pytest.raises(ValueError, match="BIGMODEL_TELEMETRY_WORKERS='x': not a whole number"):
        workers_from_env({"BIGMODEL_TELEMETRY_WORKERS": "x"})
