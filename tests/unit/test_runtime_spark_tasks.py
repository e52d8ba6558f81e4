"""The Spark worker wrapper: each worker's T_i, as the operator reads it from the worker's
page, agrees with the task durations Spark's monitoring REST API records for the same
window."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from bigmodel.runtime.spark_tasks import executor_totals, page
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
    HAVE_SPARK,
    NO_SPARK,
    SLOW_WORKER,
    SparkCluster,
    sleep_task,
    spark_cluster,
    task_totals,
    wait_for,
)


def _executor(id: str, host: str, done: int, failed: int, ms: int) -> dict[str, Any]:
    summary = {"completedTasks": done, "failedTasks": failed, "totalDuration": ms}
    return {"id": id, "hostPort": f"{host}:40000", **summary}


def test_a_workers_totals_add_up_the_executors_on_its_host_failed_tasks_included() -> None:
    executors = [
        _executor("driver", "10.0.0.1", 0, 0, 99_000),
        _executor("0", "10.0.0.2", 3, 1, 2_000),
        _executor("1", "10.0.0.3", 5, 0, 7_000),
        _executor("2", "10.0.0.2", 2, 0, 1_500),
    ]
    assert executor_totals(executors, "10.0.0.2") == TaskTotals(tasks=6, seconds=3.5)


def test_a_page_without_an_answering_driver_has_no_sample() -> None:
    text = page("http://127.0.0.1:9", "10.0.0.2")
    assert TASK_SECONDS_SUM not in text and text.startswith("# no Spark application")


def _operator_reading(before: TaskTotals, after: TaskTotals) -> float:
    """T_i as the operator's `JOB_TASK_SECONDS` reading computes it from two scrapes."""

    def raw(totals: TaskTotals) -> Mapping[Series, float]:
        return {Series(TASK_SECONDS_SUM): totals.seconds, Series(TASK_SECONDS_COUNT): totals.tasks}

    earlier = Scrape(Target("w", "pod", "http://unused"), None, raw=raw(before))
    return JOB_TASK_SECONDS.value(raw(after), earlier, time.monotonic())


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SparkCluster, Any]]:
    if not HAVE_SPARK:
        pytest.skip(NO_SPARK)
    from pyspark.sql import SparkSession

    with spark_cluster(tmp_path_factory.mktemp("spark")) as cluster:
        session = (
            SparkSession.builder.master(cluster.master)
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.ui.port", str(cluster.driver_ui_port))
            .config("spark.port.maxRetries", "0")
            .config("spark.executor.cores", "1")
            .config("spark.executor.memory", "512m")
            .config("spark.ui.showConsoleProgress", "false")
            .getOrCreate()
        )
        try:
            yield cluster, session
        finally:
            session.stop()


def _pages(cluster: SparkCluster) -> dict[str, TaskTotals]:
    pages: dict[str, TaskTotals] = {}

    def all_answer() -> bool:
        pages.update({n: t for n, p in cluster.metrics.items() if (t := task_totals(p))})
        return len(pages) == len(cluster.metrics)

    wait_for(all_answer, "every worker's task page")
    return pages


def _rest(cluster: SparkCluster, path: str) -> Any:
    url = f"http://127.0.0.1:{cluster.driver_ui_port}/api/v1/applications/{path}"
    with urllib.request.urlopen(url, timeout=30) as reply:
        return json.load(reply)


def _window(
    cluster: SparkCluster, session: Any, seconds: float, tasks: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Run `tasks` tasks of `seconds`; per worker name, T_i as the operator reads it from the
    pages before and after, and the mean task duration in Spark's REST API task list."""
    context = session.sparkContext
    group = f"window-{time.monotonic_ns()}"
    before = _pages(cluster)
    context.setJobGroup(group, "a measured window")
    context.parallelize([seconds] * tasks, tasks).map(sleep_task).count()
    app, names = context.applicationId, {h: n for n, h in cluster.hosts.items()}
    recorded: dict[str, list[int]] = {}
    for job in context.statusTracker().getJobIdsForGroup(group):
        for stage in context.statusTracker().getJobInfo(job).stageIds:
            for task in _rest(cluster, f"{app}/stages/{stage}/0/taskList?length=100000"):
                recorded.setdefault(names[task["host"]], []).append(task["duration"])
    counted = {name: before[name].tasks + len(spans) for name, spans in recorded.items()}
    wait_for(lambda: all(_pages(cluster)[n].tasks >= c for n, c in counted.items()), "the counts")
    after = _pages(cluster)
    return (
        {name: _operator_reading(before[name], after[name]) for name in recorded},
        {name: sum(spans) / len(spans) / 1000 for name, spans in recorded.items()},
    )


@pytest.mark.frameworks
@pytest.mark.timeout(900)  # a JVM cluster: minutes to start on a loaded machine
def test_each_workers_task_seconds_agree_with_the_rest_api_within_one_percent(
    spark: tuple[SparkCluster, Any],
) -> None:
    _window(*spark, seconds=0.01, tasks=4)  # executors and their Python workers started
    read, recorded = _window(*spark, seconds=0.2, tasks=16)
    assert set(read) == {"w0", "w1"}
    for name, seconds in recorded.items():
        assert read[name] == pytest.approx(seconds, rel=0.01), name


@pytest.mark.frameworks
@pytest.mark.timeout(900)
def test_a_worker_whose_tasks_sleep_twice_as_long_is_flagged_as_a_straggler(
    spark: tuple[SparkCluster, Any],
) -> None:
    policy, state = StragglerPolicy(), StragglerState()
    for _ in range(policy.window):
        read, _ = _window(*spark, seconds=1.0, tasks=4)
        state = update_stragglers(state, summarize(read), policy)
    assert state.flagged == {SLOW_WORKER}
