"""Dask and Spark jobs in the sandbox, with the real engines: the examples split their work
over 2 workers and succeed, the client's failure counts against backoffLimit, suspend and
resume, and each worker's T_i reaches the job's status."""

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

    def measured() -> dict[str, Any] | None:
        telemetry = cluster.status("dask-t").get("telemetry") or {}
        return telemetry if len(telemetry.get("perNode") or []) == 2 else None

    telemetry = wait_for("T_i of both workers", measured, 600)
    for node in telemetry["perNode"]:
        assert 0.05 <= node["taskSeconds"] < 1.0, telemetry


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
