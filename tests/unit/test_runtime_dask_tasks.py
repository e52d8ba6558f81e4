"""The Dask worker preload: each worker's T_i, as the operator reads it from the worker's
page, agrees with the compute times Dask's own task stream records for the same window."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from bigmodel.runtime.tasks import TASK_SECONDS_COUNT, TASK_SECONDS_SUM, TaskTotals
from bigmodel.telemetry.aggregate import (
    StragglerPolicy,
    StragglerState,
    summarize,
    update_stragglers,
)
from bigmodel.telemetry.collect import Scrape, Target
from bigmodel.telemetry.observe import JOB_TASK_SECONDS
from bigmodel.telemetry.textformat import Series
from support.engines import (
    HAVE_DASK,
    NO_DASK,
    SLOW_WORKER,
    DaskCluster,
    dask_cluster,
    sleep_task,
    task_totals,
    wait_for,
)

pytestmark = [pytest.mark.frameworks, pytest.mark.skipif(not HAVE_DASK, reason=NO_DASK)]


@pytest.fixture(scope="module")
def running_dask(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DaskCluster, Any]]:
    from distributed import Client

    with (
        dask_cluster(tmp_path_factory.mktemp("dask")) as running,
        Client(running.address, timeout="60s") as client,
    ):
        client.wait_for_workers(len(running.metrics), timeout=120)
        yield running, client


def _pages(running_dask: DaskCluster) -> dict[str, TaskTotals]:
    pages: dict[str, TaskTotals] = {}

    def all_answer() -> bool:
        pages.update({n: t for n, p in running_dask.metrics.items() if (t := task_totals(p))})
        return len(pages) == len(running_dask.metrics)

    wait_for(all_answer, "every worker's /metrics")
    return pages


def _window(
    running_dask: DaskCluster, client: Any, seconds: float, tasks: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Run `tasks` tasks of `seconds`; per worker name, T_i as the operator reads it from the
    pages before and after, and the mean compute time in Dask's task stream."""
    from distributed import get_task_stream

    before = _pages(running_dask)
    with get_task_stream(client) as stream:
        client.gather(client.map(sleep_task, [seconds] * tasks, pure=False))
    names = {a: w["name"] for a, w in client.scheduler_info()["workers"].items()}
    recorded: dict[str, list[float]] = {}
    for task in stream.data:
        for span in task["startstops"]:
            if span["action"] == "compute":
                recorded.setdefault(names[task["worker"]], []).append(span["stop"] - span["start"])
    counted = {name: before[name].tasks + len(spans) for name, spans in recorded.items()}
    wait_for(
        lambda: all(_pages(running_dask)[n].tasks >= c for n, c in counted.items()), "the counts"
    )
    after = _pages(running_dask)
    return (
        {name: _operator_reading(before[name], after[name]) for name in recorded},
        {name: sum(spans) / len(spans) for name, spans in recorded.items()},
    )


def _operator_reading(before: TaskTotals, after: TaskTotals) -> float:
    """T_i as the operator's `JOB_TASK_SECONDS` reading computes it from two scrapes."""

    def raw(totals: TaskTotals) -> Mapping[Series, float]:
        return {Series(TASK_SECONDS_SUM): totals.seconds, Series(TASK_SECONDS_COUNT): totals.tasks}

    earlier = Scrape(Target("w", "pod", "http://unused"), None, raw=raw(before))
    return JOB_TASK_SECONDS.value(raw(after), earlier, time.monotonic())


def test_each_workers_task_seconds_agree_with_the_task_stream_within_one_percent(
    running_dask: tuple[DaskCluster, Any],
) -> None:
    read, recorded = _window(*running_dask, seconds=0.05, tasks=40)
    assert set(read) == {"w0", "w1"}
    for name, seconds in recorded.items():
        assert read[name] == pytest.approx(seconds, rel=0.01), name


def test_a_worker_whose_tasks_sleep_twice_as_long_is_flagged_as_a_straggler(
    running_dask: tuple[DaskCluster, Any],
) -> None:
    policy, state = StragglerPolicy(), StragglerState()
    for _ in range(policy.window):
        read, _ = _window(*running_dask, seconds=0.04, tasks=20)
        assert read[SLOW_WORKER] == pytest.approx(2 * read["w0"], rel=0.25)
        state = update_stragglers(state, summarize(read), policy)
    assert state.flagged == {SLOW_WORKER}
