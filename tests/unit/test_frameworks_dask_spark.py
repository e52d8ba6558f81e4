"""Dask's and Spark's launch contracts: the cluster's pods by role, what each runs, the
client's or driver's environment, the Services, the success rule, and the CEL rules that
refuse what they cannot run."""

from __future__ import annotations

import shlex
from typing import Any

import pytest

from bigmodel.api import BigModelJob, parse_resource
from bigmodel.api.crds import crds
from bigmodel.controller.job.telemetry import READINGS
from bigmodel.manifests.frameworks import Measure, Member, OnFailure, WhenDone, contract_of
from bigmodel.manifests.job import build_pod, build_services, pod_count, spec_errors
from bigmodel.telemetry.observe import JOB_TASK_SECONDS
from kubesandbox.apiserver.crdschema import CRDSchema

JOB_SCHEMA = CRDSchema(
    next(c for c in crds() if c["spec"]["names"]["kind"] == "BigModelJob")["spec"]["versions"][0][
        "schema"
    ]["openAPIV3Schema"]
)
RESOURCES = {"requests": {"cpu": "2", "memory": "4Gi"}}


def body(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "bigmodel.dev/v1alpha1",
        "kind": "BigModelJob",
        "metadata": {"name": "feat", "namespace": "ml", "uid": "u", "generation": 1},
        "spec": {"image": "img", "command": ["python", "app.py"], **spec},
    }


def job(framework: str, **spec: Any) -> BigModelJob:
    return parse_resource(BigModelJob, body({"framework": framework, "nodes": 2, **spec}))


def main(pod: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = pod["spec"]["containers"][0]
    return container


def program(pod: dict[str, Any]) -> list[str]:
    return [*main(pod)["command"], *main(pod).get("args", [])]


def env_of(pod: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in main(pod)["env"]}


# --- Dask ------------------------------------------------------------------------------------


def test_a_dask_job_is_a_scheduler_its_workers_and_the_client() -> None:
    dask = job("dask", resources=RESOURCES)
    names = [
        build_pod(dask, m)["metadata"]["name"]
        for m in contract_of(dask.spec.framework).members(dask.spec)
    ]
    assert names == ["feat-scheduler", "feat-node-0", "feat-node-1", "feat-client"]
    assert pod_count(dask) == 4


def test_dask_workers_take_their_threads_and_memory_limit_from_the_pod_resources() -> None:
    pod = build_pod(job("dask", resources=RESOURCES), Member("worker", 1))
    assert program(pod) == [
        "dask", "worker", "tcp://feat-scheduler.feat:8786", "--name", "1", "--nthreads", "2",
        "--memory-limit", str(4 * 2**30), "--no-nanny", "--preload", "bigmodel.runtime.dask_tasks",
    ]  # fmt: skip


def test_dask_workers_without_metrics_run_without_the_task_time_preload() -> None:
    pod = build_pod(job("dask", metrics={"enabled": False}), Member("worker", 0))
    assert "--preload" not in program(pod)
    assert program(pod)[-3:] == ["--memory-limit", "auto", "--no-nanny"]


def test_the_dask_client_runs_the_command_once_the_scheduler_answers() -> None:
    pod = build_pod(job("dask", args=["--fast"]), Member("client", 0))
    assert program(pod) == [
        "python", "-m", "bigmodel.runtime.await_address", "feat-scheduler.feat:8786", "--",
        "python", "app.py", "--fast",
    ]  # fmt: skip
    assert env_of(pod)["DASK_SCHEDULER_ADDRESS"] == "tcp://feat-scheduler.feat:8786"


def test_the_dask_schedulers_service_names_its_port_and_dashboard() -> None:
    service = build_services(job("dask"))[1]
    assert service["metadata"]["name"] == "feat-scheduler"
    assert service["spec"]["selector"]["bigmodel.dev/role"] == "scheduler"
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == {
        "tcp-comm": 8786,
        "http-dashboard": 8787,
    }


@pytest.mark.parametrize("framework", ["dask", "spark"])
def test_only_the_client_decides_and_a_lost_worker_fails_nothing(framework: str) -> None:
    spec = job(framework).spec
    roles = {
        r.name: (r.decides, r.when_done, r.on_failure, r.measured)
        for r in contract_of(spec.framework).roles(spec)
    }
    deciding = "client" if framework == "dask" else "driver"
    head = "scheduler" if framework == "dask" else "master"
    assert roles == {
        head: (False, WhenDone.STOP, OnFailure.RESTART, False),
        "worker": (False, WhenDone.STOP, OnFailure.IGNORE, True),
        deciding: (True, WhenDone.WAIT, OnFailure.RESTART, False),
    }


@pytest.mark.parametrize("framework", ["dask", "spark"])
def test_the_workers_t_i_is_read_as_task_time(framework: str) -> None:
    measure = contract_of(job(framework).spec.framework).measure
    assert measure is Measure.TASKS and READINGS[measure] == JOB_TASK_SECONDS


# --- Spark -----------------------------------------------------------------------------------


def test_a_spark_job_is_a_master_its_workers_and_the_driver() -> None:
    spark = job("spark")
    names = [
        build_pod(spark, m)["metadata"]["name"]
        for m in contract_of(spark.spec.framework).members(spark.spec)
    ]
    assert names == ["feat-master", "feat-node-0", "feat-node-1", "feat-driver"]


def test_the_spark_master_runs_standalone_on_its_own_name() -> None:
    assert program(build_pod(job("spark"), Member("master", 0))) == [
        "spark-class", "org.apache.spark.deploy.master.Master", "--host", "feat-master.feat",
        "--port", "7077", "--webui-port", "8080",
    ]  # fmt: skip


def test_a_spark_worker_runs_under_the_task_time_exporter_with_cores_and_memory() -> None:
    pod = build_pod(job("spark", resources=RESOURCES), Member("worker", 0))
    assert program(pod) == [
        "python", "-m", "bigmodel.runtime.spark_tasks",
        "--driver-ui", "http://feat-driver.feat:4040",
        "--executor-host", "feat-node-0.feat", "--",
        "spark-class", "org.apache.spark.deploy.worker.Worker", "--host", "feat-node-0.feat",
        "--cores", "2", "--memory", "2048m", "--webui-port", "8081",
        "spark://feat-master.feat:7077",
    ]  # fmt: skip


def test_the_spark_driver_runs_the_application_once_the_master_answers() -> None:
    pod = build_pod(job("spark"), Member("driver", 0))
    assert program(pod) == [
        "python", "-m", "bigmodel.runtime.await_address", "feat-master.feat:7077", "--",
        "python", "app.py",
    ]  # fmt: skip


def test_the_spark_driver_joins_the_cluster_in_client_mode() -> None:
    variables = env_of(build_pod(job("spark", resources=RESOURCES), Member("driver", 0)))
    assert variables["SPARK_MASTER_URL"] == "spark://feat-master.feat:7077"
    assert shlex.split(variables["PYSPARK_SUBMIT_ARGS"]) == [
        "--master", "spark://feat-master.feat:7077",
        "--conf", "spark.driver.host=feat-driver.feat",
        "--conf", "spark.ui.port=4040",
        "--conf", "spark.executor.cores=2",
        "--conf", "spark.executor.memory=2048m",
        "pyspark-shell",
    ]  # fmt: skip


def test_the_spark_services_front_the_master_and_the_driver_ui() -> None:
    services = build_services(job("spark"))[1:]
    assert {s["metadata"]["name"]: [p["port"] for p in s["spec"]["ports"]] for s in services} == {
        "feat-master": [7077, 8080],
        "feat-driver": [4040],
    }


@pytest.mark.parametrize(
    ("framework", "name"), [("dask", "DASK_SCHEDULER_ADDRESS"), ("spark", "SPARK_MASTER_URL")]
)
def test_the_engines_address_in_user_env_is_refused_naming_the_field(
    framework: str, name: str
) -> None:
    spark = job(framework, env=[{"name": name, "value": "x"}])
    assert spec_errors(spark) == [f"spec.env[0].name: {name} is set by the operator"]


# --- what the schema refuses -----------------------------------------------------------------


@pytest.mark.parametrize("framework", ["dask", "spark"])
@pytest.mark.parametrize(
    ("spec", "field", "words"),
    [
        (
            {"elastic": {"minNodes": 1, "maxNodes": 2}},
            "spec.elastic",
            "elastic applies only to framework pytorch",
        ),
        (
            {"procsPerNode": 2},
            "spec.procsPerNode",
            "procsPerNode does not apply to frameworks dask and spark",
        ),
        (
            {"gpusPerNode": 1},
            "spec.gpusPerNode",
            "gpusPerNode does not apply to frameworks dask and spark",
        ),
        (
            {"tensorflow": {"parameterServers": 1}},
            "spec.tensorflow",
            "only when framework is tensorflow",
        ),
    ],
)
def test_the_schema_refuses_what_a_task_engine_cannot_run_naming_the_field(
    framework: str, spec: dict[str, Any], field: str, words: str
) -> None:
    obj = JOB_SCHEMA.default(body({"framework": framework, "nodes": 2, **spec}))
    errors = JOB_SCHEMA.validate(obj)
    assert [(e.field, words in e.message) for e in errors] == [(field, True)], errors


@pytest.mark.parametrize("framework", ["dask", "spark"])
def test_a_task_engine_job_with_resources_is_admitted(framework: str) -> None:
    obj = JOB_SCHEMA.default(body({"framework": framework, "nodes": 2, "resources": RESOURCES}))
    assert JOB_SCHEMA.validate(obj) == []


def test_an_unknown_framework_is_refused_naming_the_allowed_ones() -> None:
    errors = JOB_SCHEMA.validate(JOB_SCHEMA.default(body({"framework": "ray"})))
    assert [e.field for e in errors] == ["spec.framework"]
    assert all(f in errors[0].message for f in ("dask", "spark")), errors
