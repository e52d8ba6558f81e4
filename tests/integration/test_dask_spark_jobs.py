"""Dask and Spark jobs in the sandbox, with the real engines: the examples split their work
over 2 workers and succeed, the client's failure and the scheduler's loss count against
backoffLimit, suspend and resume, each worker's T_i reaches the job's status, and a worker
whose tasks take twice as long is flagged as a straggler."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kubesandbox.testing import wait_for
from support.engines import HAVE_DASK, HAVE_SPARK, NO_DASK, NO_SPARK
from support.examples import example as load_example
from support.harness import Cluster, Operator

pytestmark = [pytest.mark.frameworks, pytest.mark.timeout(900)]
needs_dask = pytest.mark.skipif(not HAVE_DASK, reason=NO_DASK)
needs_spark = pytest.mark.skipif(not HAVE_SPARK, reason=NO_SPARK)


@pytest.fixture
def operator_env() -> dict[str, str]:
    """Telemetry rounds every 2 s, so that a short run is measured."""
    return {"BIGMODEL_TELEMETRY_INTERVAL": "2"}


def _result(cluster: Cluster, pod: str) -> dict[str, Any]:
    lines = [line for line in cluster.kubectl("logs", pod).splitlines() if line.startswith("{")]
    found: dict[str, Any] = json.loads(lines[-1])
    return found


def _per_node(cluster: Cluster, job: str) -> list[dict[str, Any]] | None:
    """T_i of the job's workers in its status, once all 2 are measured."""
    nodes: list[dict[str, Any]] = (cluster.status(job).get("telemetry") or {}).get("perNode") or []
    return nodes if len(nodes) == 2 else None


def _lose_while_measured(
    cluster: Cluster, job: str, coordinator: str, decider: str, timeout: float
) -> dict[str, Any]:
    """Delete the job's `coordinator` pod once its workers' tasks are measured (the program
    runs); wait for the job to succeed with its `decider` pod run again on a new cluster."""
    cluster.wait_phase(job, "Running", timeout)
    wait_for("the program's tasks measured", lambda: _per_node(cluster, job), timeout)
    first = cluster.uids()[f"{job}-{decider}"]
    cluster.kubectl("delete", "pod", f"{job}-{coordinator}", "--wait=false")
    status = cluster.wait_phase(job, "Succeeded", timeout)
    assert cluster.uids()[f"{job}-{decider}"] != first
    return status


def _spec(name: str, **changes: Any) -> dict[str, Any]:
    return {**load_example(name, "BigModelJob")["spec"], **changes}


@needs_dask
def test_the_dask_example_splits_its_work_over_two_workers_and_succeeds(
    operator: Operator, cluster: Cluster
) -> None:
    example = load_example("dask-job.yaml", "BigModelJob")
    cluster.apply_job("dask-demo", example["spec"])
    status = cluster.wait_phase("dask-demo", "Succeeded", timeout=600)
    assert status["restarts"] == 0
    result = _result(cluster, "dask-demo-client")
    assert result["workers"] == 2 and result["tasks"] > 2
    assert result["result"] == pytest.approx(4000, rel=0.01)  # mean of x + x.T is 1 per column
    wait_for("no pod left running", lambda: "Running" not in cluster.pod_phases().values())


@needs_dask
def test_each_dask_workers_task_time_reaches_the_status(
    operator: Operator, cluster: Cluster
) -> None:
    client = [
        "python", "-c",
        "import time; from distributed import Client; c = Client()\n"
        "while True: c.gather(c.map(time.sleep, [0.05] * 20, pure=False))",
    ]  # fmt: skip
    cluster.apply_job("dask-t", _spec("dask-job.yaml", command=client, args=[]))
    cluster.wait_phase("dask-t", "Running", timeout=600)

    nodes = wait_for("T_i of both workers", lambda: _per_node(cluster, "dask-t"), 600)
    for node in nodes:
        assert 0.05 <= node["taskSeconds"] < 1.0, nodes


@needs_dask
def test_a_failing_dask_client_restarts_the_cluster_until_the_backoff_limit(
    operator: Operator, cluster: Cluster
) -> None:
    failing = _spec("dask-job.yaml", command=["python", "-c", "raise SystemExit(3)"], args=[])
    cluster.apply_job("dask-fail", {**failing, "runPolicy": {"backoffLimit": 1}})
    status = cluster.wait_phase("dask-fail", "Failed", timeout=600)
    assert status["restarts"] == 1


@needs_dask
def test_a_suspended_dask_job_stops_its_pods_and_resumes(
    operator: Operator, cluster: Cluster
) -> None:
    waiting = [
        "python",
        "-c",
        "import time; from distributed import Client; Client(); time.sleep(3600)",
    ]
    cluster.apply_job("dask-pause", _spec("dask-job.yaml", command=waiting, args=[]))
    cluster.wait_running_pods(4)
    cluster.patch_spec("dask-pause", {"runPolicy": {"suspend": True}})
    cluster.wait_phase("dask-pause", "Suspended", timeout=120)
    wait_for("no pods", lambda: not cluster.pods(), 120)
    cluster.patch_spec("dask-pause", {"runPolicy": {"suspend": False}})
    cluster.wait_running_pods(4)
    cluster.wait_phase("dask-pause", "Running", timeout=120)


@needs_spark
def test_the_spark_example_counts_words_on_two_executors_and_succeeds(
    operator: Operator, cluster: Cluster
) -> None:
    example = load_example("spark-job.yaml", "BigModelJob")
    cluster.apply_job("spark-demo", example["spec"])
    status = cluster.wait_phase("spark-demo", "Succeeded", timeout=840)
    assert status["restarts"] == 0
    result = _result(cluster, "spark-demo-driver")
    assert result["executors"] == 2 and result["words"] == 200_000 * 12


@needs_dask
def test_losing_the_dask_scheduler_restarts_the_cluster_and_the_job_then_succeeds(
    operator: Operator, cluster: Cluster
) -> None:
    # About 40 s of tasks on 2 workers: long enough to lose the scheduler in the middle.
    client = [
        "python", "-c",
        "import time; from distributed import Client; c = Client()\n"
        "for _ in range(40): c.gather(c.map(time.sleep, [0.1] * 20, pure=False))",
    ]  # fmt: skip
    spec = _spec("dask-job.yaml", command=client, args=[], runPolicy={"backoffLimit": 1})
    cluster.apply_job("dask-lost", spec)
    status = _lose_while_measured(cluster, "dask-lost", "scheduler", "client", timeout=600)
    assert status["restarts"] == 1


@needs_dask
def test_a_dask_worker_whose_tasks_take_twice_as_long_is_flagged_as_straggler(
    operator: Operator, cluster: Cluster
) -> None:
    # Worker "1" (pod dask-slow-node-1) sleeps 0.2 s per task, worker "0" 0.1 s.
    client = [
        "python", "-c",
        "import time; from distributed import Client, get_worker; c = Client()\n"
        "def task(i): time.sleep(0.2 if str(get_worker().name) == '1' else 0.1)\n"
        "while True: c.gather(c.map(task, range(20), pure=False))",
    ]  # fmt: skip
    spec = _spec("dask-job.yaml", command=client, args=[], telemetry={"windowSeconds": 5})
    cluster.apply_job("dask-slow", spec)

    def flagged() -> dict[str, Any] | None:
        condition = next(
            (c for c in cluster.status("dask-slow").get("conditions") or ()
             if c["type"] == "StragglerDetected"),
            None,
        )  # fmt: skip
        return condition if condition and condition["status"] == "True" else None

    context = lambda: cluster.kubectl("get", "bmj", "dask-slow", "-o", "yaml")  # noqa: E731
    condition = wait_for("StragglerDetected=True", flagged, 600, context)
    assert "pod dask-slow-node-1" in condition["message"]
    assert cluster.status("dask-slow")["telemetry"]["stragglers"] == ["dask-slow-node-1"]


@needs_spark
def test_each_spark_workers_task_time_reaches_the_status(
    operator: Operator, cluster: Cluster
) -> None:
    driver = [
        "python", "-c",
        "import time; from pyspark.sql import SparkSession\n"
        "sc = SparkSession.builder.getOrCreate().sparkContext\n"
        "while True: sc.parallelize(range(20), 20).foreach(lambda _: time.sleep(0.05))",
    ]  # fmt: skip
    # A 5 s window: an executor's first task (seconds: it starts Python) soon leaves it.
    spec = _spec("spark-job.yaml", command=driver, args=[], telemetry={"windowSeconds": 5})
    cluster.apply_job("spark-t", spec)
    cluster.wait_phase("spark-t", "Running", timeout=840)

    def steady() -> list[dict[str, Any]] | None:
        nodes = _per_node(cluster, "spark-t")
        return nodes if nodes and all(0.05 <= n["taskSeconds"] < 1.0 for n in nodes) else None

    telemetry = lambda: json.dumps(cluster.status("spark-t").get("telemetry"))  # noqa: E731
    wait_for("T_i of both workers near their tasks' 0.05 s", steady, 840, telemetry)


@needs_spark
def test_losing_the_spark_master_restarts_the_cluster_and_the_job_then_succeeds(
    operator: Operator, cluster: Cluster
) -> None:
    # About 40 jobs of 20 short tasks: long enough to lose the master in the middle.
    driver = [
        "python", "-c",
        "import time; from pyspark.sql import SparkSession\n"
        "sc = SparkSession.builder.getOrCreate().sparkContext\n"
        "for _ in range(40): sc.parallelize(range(20), 20).foreach(lambda _: time.sleep(0.1))",
    ]  # fmt: skip
    spec = _spec("spark-job.yaml", command=driver, args=[], runPolicy={"backoffLimit": 1})
    cluster.apply_job("spark-lost", spec)
    status = _lose_while_measured(cluster, "spark-lost", "master", "driver", timeout=840)
    assert status["restarts"] == 1
