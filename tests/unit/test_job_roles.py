"""The job's decisions on a framework with several roles (TensorFlow: workers, parameter
servers, an evaluator): who decides success, who is stopped then, whose failure counts."""

from __future__ import annotations

from typing import Any

from bigmodel.api import BigModelJob, JobPhase, parse_resource
from bigmodel.controller.job.decisions import decide
from bigmodel.controller.job.plan import Plan
from bigmodel.controller.job.pods import NodePod
from bigmodel.controller.job.timing import Timing
from bigmodel.manifests.frameworks import Member
from support.jobs import NOW

NAMES = {"worker": "tf-node-{}", "ps": "tf-ps-{}", "evaluator": "tf-evaluator"}


def tf_job(phase: str | None = "Running", **options: Any) -> BigModelJob:
    tensorflow = {"parameterServers": 1, "evaluators": 1, **options}
    body = {
        "metadata": {"name": "tf", "namespace": "ml", "uid": "u", "generation": 1},
        "spec": {
            "framework": "tensorflow",
            "image": "i",
            "command": ["python", "t.py"],
            "nodes": 2,
            "tensorflow": tensorflow,
        },
        "status": {"phase": phase},
    }
    return parse_resource(BigModelJob, body)


def pod(role: str, index: int, phase: str = "Running", **fields: Any) -> NodePod:
    name = NAMES[role].format(index)
    return NodePod(name, f"uid-{name}", Member(role, index), phase, **fields)


def run(job: BigModelJob, pods: list[NodePod]) -> Plan:
    return decide(job, pods, NOW, Timing(restart_backoff=10))


def everyone(
    workers: str = "Running", ps: str = "Running", evaluator: str = "Running"
) -> list[NodePod]:
    return [
        pod("worker", 0, workers),
        pod("worker", 1, workers),
        pod("ps", 0, ps),
        pod("evaluator", 0, evaluator),
    ]


def test_a_new_tensorflow_job_creates_workers_then_parameter_servers_then_the_evaluator() -> None:
    plan = run(tf_job(phase=None), [])
    assert plan.create == [
        Member("worker", 0),
        Member("worker", 1),
        Member("ps", 0),
        Member("evaluator", 0),
    ]


def test_the_job_runs_once_every_pod_of_every_role_runs() -> None:
    assert run(tf_job(phase="Pending"), everyone()).status.phase is JobPhase.RUNNING
    pending = [*everyone()[:3], pod("evaluator", 0, "Pending")]
    assert run(tf_job(phase="Pending"), pending).status.phase is JobPhase.PENDING


def test_every_worker_succeeding_succeeds_the_job_and_stops_the_parameter_server() -> None:
    plan = run(tf_job(), everyone(workers="Succeeded"))
    assert plan.status.phase is JobPhase.SUCCEEDED
    assert sorted(p.name for p in plan.delete) == ["tf-evaluator", "tf-ps-0"]


def test_stopped_roles_are_stopped_even_when_the_clean_pod_policy_keeps_pods() -> None:
    job = tf_job()
    job.spec.run_policy.clean_pod_policy = job.spec.run_policy.clean_pod_policy.NONE
    plan = run(job, everyone(workers="Succeeded"))
    assert sorted(p.name for p in plan.delete) == ["tf-evaluator", "tf-ps-0"]


def test_one_worker_still_running_keeps_the_job_running() -> None:
    pods = [pod("worker", 0, "Succeeded"), *everyone()[1:]]
    plan = run(tf_job(), pods)
    assert (plan.status.phase, plan.delete) == (JobPhase.RUNNING, [])


def test_the_evaluator_finishing_first_does_not_decide_the_job() -> None:
    plan = run(tf_job(), everyone(evaluator="Succeeded"))
    assert plan.status.phase is JobPhase.RUNNING


def test_a_failed_evaluator_neither_fails_nor_restarts_the_job() -> None:
    plan = run(tf_job(), everyone(evaluator="Failed"))
    assert (plan.status.phase, plan.delete, plan.create) == (JobPhase.RUNNING, [], [])
    done = run(tf_job(), everyone(workers="Succeeded", evaluator="Failed"))
    assert done.status.phase is JobPhase.SUCCEEDED


def test_a_failed_parameter_server_restarts_the_gang() -> None:
    plan = run(tf_job(), everyone(ps="Failed"))
    assert plan.status.phase is JobPhase.RESTARTING
    assert len(plan.delete) == 4


def test_a_deleted_evaluator_is_created_again_without_a_restart() -> None:
    plan = run(tf_job(), everyone()[:3])
    assert plan.status.phase is JobPhase.RUNNING
    assert plan.create == [Member("evaluator", 0)]


def test_a_deleted_worker_restarts_the_gang() -> None:
    plan = run(tf_job(), [everyone()[0], *everyone()[2:]])
    assert plan.status.phase is JobPhase.RESTARTING
    assert plan.status.restarts == 1
