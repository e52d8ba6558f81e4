"""The job's decisions on the task engines (Dask: scheduler, workers, client; Spark:
master, workers, driver): the client or driver decides, the others are stopped then, a lost
scheduler or master restarts the cluster, a lost worker is the engine's business."""

from __future__ import annotations

from typing import Any

import pytest

from bigmodel.api import BigModelJob, JobPhase, parse_resource
from bigmodel.controller.job.decisions import decide
from bigmodel.controller.job.plan import Plan
from bigmodel.controller.job.pods import NodePod
from bigmodel.controller.job.timing import Timing
from bigmodel.manifests.frameworks import Member
from support.jobs import NOW

ROLES = {"dask": ("scheduler", "client"), "spark": ("master", "driver")}


def engine_job(framework: str, backoff_limit: int = 3) -> BigModelJob:
    body = {
        "metadata": {"name": "e", "namespace": "ml", "uid": "u", "generation": 1},
        "spec": {
            "framework": framework,
            "image": "i",
            "command": ["python", "app.py"],
            "nodes": 2,
            "runPolicy": {"backoffLimit": backoff_limit},
        },
        "status": {"phase": "Running"},
    }
    return parse_resource(BigModelJob, body)


def pod(role: str, index: int, phase: str = "Running", **fields: Any) -> NodePod:
    name = f"e-node-{index}" if role == "worker" else f"e-{role}"
    return NodePod(name, f"uid-{name}", Member(role, index), phase, **fields)


def engine_pods(
    framework: str, head: str = "Running", deciding: str = "Running", worker: str = "Running"
) -> list[NodePod]:
    head_role, deciding_role = ROLES[framework]
    return [
        pod(head_role, 0, head),
        pod("worker", 0, worker),
        pod("worker", 1),
        pod(deciding_role, 0, deciding),
    ]


def run(job: BigModelJob, pods: list[NodePod]) -> Plan:
    return decide(job, pods, NOW, Timing(restart_backoff=10))


@pytest.mark.parametrize("framework", ["dask", "spark"])
def test_the_client_exiting_zero_succeeds_the_job_and_stops_the_cluster(framework: str) -> None:
    plan = run(engine_job(framework), engine_pods(framework, deciding="Succeeded"))
    assert plan.status.phase is JobPhase.SUCCEEDED
    head, _ = ROLES[framework]
    assert sorted(p.name for p in plan.delete) == sorted([f"e-{head}", "e-node-0", "e-node-1"])


@pytest.mark.parametrize("framework", ["dask", "spark"])
def test_a_failed_client_restarts_the_whole_cluster(framework: str) -> None:
    plan = run(engine_job(framework), engine_pods(framework, deciding="Failed"))
    assert (plan.status.phase, plan.status.restarts, len(plan.delete)) == (
        JobPhase.RESTARTING,
        1,
        4,
    )


@pytest.mark.parametrize("framework", ["dask", "spark"])
def test_a_lost_scheduler_or_master_restarts_the_whole_cluster(framework: str) -> None:
    plan = run(engine_job(framework), engine_pods(framework, head="Failed"))
    assert (plan.status.phase, plan.status.restarts, len(plan.delete)) == (
        JobPhase.RESTARTING,
        1,
        4,
    )


@pytest.mark.parametrize("framework", ["dask", "spark"])
def test_a_failed_client_past_the_backoff_limit_fails_the_job(framework: str) -> None:
    plan = run(engine_job(framework, backoff_limit=0), engine_pods(framework, deciding="Failed"))
    assert plan.status.phase is JobPhase.FAILED


@pytest.mark.parametrize("framework", ["dask", "spark"])
def test_a_lost_scheduler_or_master_past_the_backoff_limit_fails_the_job(framework: str) -> None:
    plan = run(engine_job(framework, backoff_limit=0), engine_pods(framework, head="Failed"))
    assert plan.status.phase is JobPhase.FAILED
    assert plan.status.restarts == 0
    failed = next(c for c in plan.status.conditions if c.type == "Failed")
    assert f"e-{ROLES[framework][0]}" in failed.message
    assert sorted(p.name for p in plan.delete) == sorted(
        [f"e-{ROLES[framework][1]}", "e-node-0", "e-node-1"]
    )


@pytest.mark.parametrize("framework", ["dask", "spark"])
def test_a_lost_worker_neither_fails_nor_restarts_the_job(framework: str) -> None:
    plan = run(engine_job(framework), engine_pods(framework, worker="Failed"))
    assert (plan.status.phase, plan.status.restarts) == (JobPhase.RUNNING, 0)
    assert all(p.name != f"e-{ROLES[framework][0]}" for p in plan.delete)
