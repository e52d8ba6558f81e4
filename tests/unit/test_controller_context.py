"""The operator's workers run only on the leader, once the caches are synced, in the context
of kopf's handlers (where kopf can post events); a new leader looks at every cached object
afresh; a replica that steps down stops its workers."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

from prometheus_client import CollectorRegistry

from bigmodel.controller.context import OperatorContext
from bigmodel.controller.queuemetrics import WorkQueueMetrics
from bigmodel.controller.workers import Controller


class FakeKind:
    """A kind whose reconcile records the keys it is given and blocks on `release`."""

    def __init__(self, cached: list[str]) -> None:
        self.looked: list[str] = []
        self.resets = 0
        self.keys = cached
        self.release = asyncio.Event()
        self.changed = asyncio.Event()
        self.reconciler = Controller(
            "fake", self.reconcile, 1, WorkQueueMetrics(CollectorRegistry())
        )

    async def reconcile(self, key: str) -> float | None:
        self.looked.append(key)
        self.changed.set()
        await self.release.wait()
        return None

    @property
    def controllers(self) -> tuple[Controller, ...]:
        return (self.reconciler,)

    def cached(self) -> list[str]:
        return self.keys

    def reset(self) -> None:
        self.resets += 1

    async def looked_at(self, count: int) -> None:
        async with asyncio.timeout(60):
            while len(self.looked) < count:
                self.changed.clear()
                await self.changed.wait()


def operator(kind: FakeKind, handled: bool = True) -> OperatorContext:
    """The operator's context running `kind`, once a kopf handler has run (`handled`)."""
    none: Any = None
    shared = OperatorContext(none, none, none, 1.0)
    shared.add(kind)
    if handled:
        shared.handling()
    return shared


def test_workers_run_only_on_the_leader_once_the_caches_are_synced() -> None:
    async def scenario() -> list[bool]:
        kind = FakeKind([])
        shared = operator(kind)
        states = []
        shared.caches_synced()
        states.append(kind.reconciler.started)  # synced, not leading
        await shared.lead()
        states.append(kind.reconciler.started)
        await shared.step_down()
        states.append(kind.reconciler.started)
        return states

    assert asyncio.run(scenario()) == [False, True, False]


def test_a_leader_before_the_caches_are_synced_waits_for_them() -> None:
    async def scenario() -> list[bool]:
        kind = FakeKind([])
        shared = operator(kind)
        await shared.lead()
        before = kind.reconciler.started
        shared.caches_synced()
        after = kind.reconciler.started
        await shared.step_down()
        return [before, after]

    assert asyncio.run(scenario()) == [False, True]


def test_a_new_leader_resets_its_state_and_looks_at_every_cached_object() -> None:
    async def scenario() -> tuple[list[str], int]:
        kind = FakeKind(["ns/a", "ns/b"])
        shared = operator(kind)
        shared.caches_synced()
        await shared.lead()
        kind.release.set()
        await kind.looked_at(2)
        await shared.step_down()
        return sorted(kind.looked), kind.resets

    assert asyncio.run(scenario()) == (["ns/a", "ns/b"], 1)


def test_stepping_down_cancels_the_reconcile_in_flight_and_keeps_its_key() -> None:
    async def scenario() -> tuple[bool, int]:
        kind = FakeKind(["ns/a"])
        shared = operator(kind)
        shared.caches_synced()
        await shared.lead()
        await kind.looked_at(1)
        await shared.step_down()  # the reconcile waits on `release`: cancelled
        return kind.reconciler.started, kind.reconciler.queue.depth()

    assert asyncio.run(scenario()) == (False, 1)


def test_a_stopped_replica_reports_no_queue_stall_to_liveness() -> None:
    kind = FakeKind([])
    shared = operator(kind)
    kind.reconciler.queue.add("ns/a")
    assert shared.health.queues["fake"]() == 0.0


POSTING: contextvars.ContextVar[str] = contextvars.ContextVar("posting")
"""Stands for kopf's event queue, which kopf sets in its handlers' context only."""


def test_the_workers_wait_for_a_handler_and_run_in_its_context() -> None:
    async def scenario() -> tuple[bool, list[str]]:
        kind = FakeKind(["ns/a"])
        seen: list[str] = []

        async def reconcile(key: str) -> float | None:
            seen.append(POSTING.get("unset"))
            kind.changed.set()
            return None

        kind.reconciler.reconcile = reconcile
        shared = operator(kind, handled=False)
        shared.caches_synced()
        await shared.lead()
        before = kind.reconciler.started

        async def handler() -> None:
            POSTING.set("kopf's queue")
            shared.handling()

        await asyncio.create_task(handler())
        async with asyncio.timeout(60):
            await kind.changed.wait()
        await shared.step_down()
        return before, seen

    assert asyncio.run(scenario()) == (False, ["kopf's queue"])
