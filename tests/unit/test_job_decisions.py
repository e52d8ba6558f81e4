"""The BigModelJob lifecycle: `decide(job, pods, now)` for each situation, no cluster needed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bigmodel.api import JobPhase, Reason, RestartPolicy
from bigmodel.controller.conditions import find
from bigmodel.controller.job.decisions import cluster_problems, decide, retryable
from bigmodel.controller.job.plan import Problem
from bigmodel.manifests.frameworks.pytorch import node
from support.jobs import (
    NOW,
    TIMING,
    cond,
    deleted,
    make_job,
    message,
    node_pod,
    nodes,
    plan_for,
    reason,
)

# -- starting ---------------------------------------------------------------------------------


def test_a_new_job_creates_every_node_pod_and_is_pending() -> None:
    plan = plan_for(make_job(), [])
    assert (plan.status.phase, plan.create) == (JobPhase.PENDING, nodes(0, 1))
    assert plan.status.start_time == NOW
    assert reason(plan, "Created") == "PodsCreated"


def test_only_absent_pods_are_created() -> None:
    plan = plan_for(make_job(phase="Pending"), [node_pod(0, "Pending")])
    assert plan.create == nodes(1)


def test_all_nodes_running_makes_the_job_running() -> None:
    plan = plan_for(make_job(phase="Pending"), [node_pod(0), node_pod(1)])
    assert plan.status.phase is JobPhase.RUNNING
    assert reason(plan, "Running") == "NodesRunning"
    assert (plan.status.nodes.running, plan.status.nodes.pending) == (2, 0)


def test_a_pending_pod_keeps_the_job_pending() -> None:
    plan = plan_for(make_job(phase="Pending"), [node_pod(0), node_pod(1, "Pending")])
    assert plan.status.phase is JobPhase.PENDING


@pytest.mark.parametrize(
    "problem",
    [
        Problem("Invalid", "spec.gpusPerNode: 16 GPUs, but the largest node has 8"),
        Problem(Reason.GANG_SCHEDULER_UNAVAILABLE, "spec.gangScheduling.scheduler: volcano ..."),
    ],
)
def test_a_job_the_cluster_cannot_run_fails_instead_of_starting(problem: Problem) -> None:
    plan = plan_for(make_job(), [], problem)
    assert plan.status.phase is JobPhase.FAILED
    assert plan.create == []
    failed = find(plan.status.conditions, "Failed")
    assert failed is not None and (failed.reason, failed.message) == (
        problem.reason,
        problem.message,
    )
    assert [e.type for e in plan.events] == ["Warning"]


def test_an_operator_owned_variable_fails_the_job_as_invalid_naming_the_field() -> None:
    plan = plan_for(make_job({"env": [{"name": "PYTHONUNBUFFERED", "value": "0"}]}), [])
    assert plan.status.phase is JobPhase.FAILED
    assert reason(plan, "Failed") == "Invalid"
    assert "spec.env[0].name" in message(plan, "Failed")


# -- success ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phases", "expected"),
    [
        (("Succeeded", "Succeeded"), JobPhase.SUCCEEDED),
        (("Succeeded", "Running"), JobPhase.RUNNING),
        (("Running", "Succeeded"), JobPhase.RUNNING),
        (("Succeeded", "Failed"), JobPhase.RESTARTING),
    ],
)
def test_success_is_node_0_succeeded_with_no_node_running_or_failed(
    phases: tuple[str, str], expected: JobPhase
) -> None:
    plan = plan_for(make_job(phase="Running"), [node_pod(0, phases[0]), node_pod(1, phases[1])])
    assert plan.status.phase is expected


def test_an_elastic_node_that_never_ran_does_not_hold_success_back() -> None:
    job = make_job(ELASTIC, phase="Running")
    plan = plan_for(
        job, [node_pod(0, "Succeeded"), node_pod(1, "Succeeded"), node_pod(2, "Pending")]
    )
    assert plan.status.phase is JobPhase.SUCCEEDED
    assert deleted(plan) == ["train-node-2"]  # cleanPodPolicy Running


def test_success_sets_completion_time_and_deletes_no_finished_pod() -> None:
    plan = plan_for(make_job(phase="Running"), [node_pod(0, "Succeeded"), node_pod(1, "Succeeded")])
    assert plan.status.completion_time == NOW
    assert reason(plan, "Succeeded") == "NodesSucceeded"
    assert plan.delete == []


# -- failures and restarts --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "codes", "failure", "expected"),
    [
        ("OnFailure", [], {"exit_code": 1}, True),
        ("Never", [], {"exit_code": 137}, False),
        ("Never", [], {"disruption": "Evicted"}, True),
        ("ExitCode", [], {"exit_code": 1}, False),
        ("ExitCode", [], {"exit_code": 137}, True),
        ("ExitCode", [3], {"exit_code": 3}, True),
        ("ExitCode", [], {"disruption": "PreemptionByScheduler"}, True),
    ],
)
def test_retryable_failures_per_restart_policy(
    policy: str, codes: list[int], failure: dict[str, Any], expected: bool
) -> None:
    assert retryable(node_pod(1, "Failed", **failure), RestartPolicy(policy), codes) is expected


def test_a_failed_node_restarts_the_whole_gang_and_counts() -> None:
    plan = plan_for(make_job(phase="Running"), [node_pod(0), node_pod(1, "Failed", exit_code=1)])
    assert plan.status.phase is JobPhase.RESTARTING
    assert plan.status.restarts == 1
    assert deleted(plan) == ["train-node-0", "train-node-1"]
    assert plan.create == []
    assert reason(plan, "Restarting") == "GangRestart"
    assert "train-node-1 exited with code 1" in message(plan, "Restarting")
    assert ("Warning", "GangRestart") in [(e.type, e.reason) for e in plan.events]


@pytest.mark.parametrize("policy", ["OnFailure", "ExitCode", "Never"])
def test_every_restart_counts_against_backoff_limit_whatever_the_policy(policy: str) -> None:
    spec = {"runPolicy": {"backoffLimit": 2, "restartPolicy": policy}}
    job = make_job(spec, phase="Running", restarts=2)
    plan = plan_for(job, [node_pod(0), node_pod(1, "Failed", disruption="Evicted")])
    assert plan.status.phase is JobPhase.FAILED
    assert reason(plan, "Failed") == "BackoffLimitExceeded"
    assert deleted(plan) == ["train-node-0"]  # cleanPodPolicy Running: the one still running


def test_exit_code_policy_fails_at_once_on_a_permanent_code() -> None:
    job = make_job({"runPolicy": {"restartPolicy": "ExitCode"}}, phase="Running")
    plan = plan_for(job, [node_pod(0), node_pod(1, "Failed", exit_code=2)])
    assert (plan.status.phase, plan.status.restarts) == (JobPhase.FAILED, 0)
    assert reason(plan, "Failed") == "NonRetryableExitCode"


def test_never_policy_fails_on_the_first_exit() -> None:
    job = make_job({"runPolicy": {"restartPolicy": "Never"}}, phase="Running")
    assert (
        plan_for(job, [node_pod(0, "Failed", exit_code=137), node_pod(1)]).status.phase
        is JobPhase.FAILED
    )


@pytest.mark.parametrize("leaving", [True, False])
def test_a_node_deleted_while_the_gang_runs_restarts_it(leaving: bool) -> None:
    pods = [node_pod(0), node_pod(1, leaving=True)] if leaving else [node_pod(0)]
    plan = plan_for(make_job(phase="Running"), pods)
    assert plan.status.phase is JobPhase.RESTARTING
    assert "train-node-1 was deleted" in message(plan, "Restarting")


def test_a_node_pod_the_cluster_stopped_and_deleted_is_named_with_the_reason() -> None:
    job = make_job(phase="Running")
    plan = decide(job, [node_pod(0)], NOW, TIMING, reasons={node(1): "DeletionByTaintManager"})
    assert plan.status.phase is JobPhase.RESTARTING
    assert "train-node-1 was stopped by the cluster (DeletionByTaintManager)" in message(
        plan, "Restarting"
    )


def test_restarting_deletes_leftovers_and_waits_for_them() -> None:
    job = make_job(phase="Restarting", restarts=1, conditions=[cond("Restarting", True, "X", 99)])
    plan = plan_for(job, [node_pod(0), node_pod(1, leaving=True)])
    assert deleted(plan) == ["train-node-0"]
    assert (plan.status.phase, plan.create) == (JobPhase.RESTARTING, [])


@pytest.mark.parametrize(
    ("restarts", "ago", "recreated"),
    [(1, 9, False), (1, 10, True), (2, 19, False), (2, 20, True), (5, 59, False), (5, 60, True)],
)
def test_the_gang_is_recreated_after_an_exponential_back_off(
    restarts: int, ago: float, recreated: bool
) -> None:
    conditions = [cond("Restarting", True, "GangRestart", ago)]
    plan = plan_for(make_job(phase="Restarting", restarts=restarts, conditions=conditions), [])
    assert plan.create == (nodes(0, 1) if recreated else [])
    assert plan.status.phase is (JobPhase.PENDING if recreated else JobPhase.RESTARTING)
    if not recreated:
        assert plan.wake_in == pytest.approx(TIMING.backoff(restarts) - ago)


# -- elastic ----------------------------------------------------------------------------------

ELASTIC = {"nodes": 3, "elastic": {"minNodes": 2, "maxNodes": 4}}


def test_elastic_replaces_a_failed_node_in_place_and_counts_it() -> None:
    plan = plan_for(
        make_job(ELASTIC, phase="Running"),
        [node_pod(0), node_pod(1), node_pod(2, "Failed", exit_code=1)],
    )
    assert plan.status.phase is JobPhase.RUNNING
    assert (deleted(plan), plan.status.restarts) == (["train-node-2"], 1)
    assert [e.reason for e in plan.events] == ["NodeReplaced"]


def test_elastic_recreates_a_missing_node() -> None:
    plan = plan_for(make_job(ELASTIC, phase="Running"), [node_pod(0), node_pod(1)])
    assert plan.create == nodes(2)
    assert plan.status.phase is JobPhase.RUNNING


def test_elastic_runs_once_min_nodes_run() -> None:
    plan = plan_for(
        make_job(ELASTIC, phase="Pending"), [node_pod(0), node_pod(1), node_pod(2, "Pending")]
    )
    assert plan.status.phase is JobPhase.RUNNING


def test_elastic_scale_down_deletes_the_highest_ranks() -> None:
    spec = {**ELASTIC, "nodes": 2}
    plan = plan_for(make_job(spec, phase="Running"), [node_pod(0), node_pod(1), node_pod(2)])
    assert deleted(plan) == ["train-node-2"]


@pytest.mark.parametrize(("below_for", "restarts"), [(0, False), (29, False), (30, True)])
def test_elastic_below_min_nodes_past_the_grace_period_restarts_the_gang(
    below_for: float, restarts: bool
) -> None:
    conditions = [cond("Degraded", True, "BelowMinNodes", below_for)] if below_for else []
    job = make_job(ELASTIC, phase="Running", conditions=conditions)
    plan = plan_for(job, [node_pod(0), node_pod(1, "Pending"), node_pod(2, "Pending")])
    assert plan.status.phase is (JobPhase.RESTARTING if restarts else JobPhase.RUNNING)
    assert reason(plan, "Degraded") == (None if restarts else "BelowMinNodes")


# -- deadline, suspend, cleanup, TTL ----------------------------------------------------------


def test_the_deadline_fails_the_job_and_stops_its_pods_whatever_the_clean_policy() -> None:
    spec = {"runPolicy": {"activeDeadlineSeconds": 60, "cleanPodPolicy": "None"}}
    job = make_job(spec, phase="Running", startTime=(NOW - timedelta(seconds=60)).isoformat())
    plan = plan_for(job, [node_pod(0), node_pod(1)])
    assert plan.status.phase is JobPhase.FAILED
    assert reason(plan, "Failed") == "DeadlineExceeded"
    assert deleted(plan) == ["train-node-0", "train-node-1"]


def test_before_the_deadline_the_job_wakes_at_it() -> None:
    spec = {"runPolicy": {"activeDeadlineSeconds": 60}}
    job = make_job(spec, phase="Running", startTime=(NOW - timedelta(seconds=45)).isoformat())
    assert plan_for(job, [node_pod(0), node_pod(1)]).wake_in == pytest.approx(15)


def test_suspend_deletes_the_pods_and_keeps_the_job() -> None:
    job = make_job({"runPolicy": {"suspend": True}}, phase="Running", startTime=NOW.isoformat())
    plan = plan_for(job, [node_pod(0), node_pod(1)])
    assert plan.status.phase is JobPhase.SUSPENDED
    assert deleted(plan) == ["train-node-0", "train-node-1"]
    assert plan.status.start_time is None
    assert reason(plan, "Suspended") == "Suspended"


def test_resume_creates_the_pods_again() -> None:
    conditions = [cond("Suspended", True, "Suspended", 5)]
    plan = plan_for(make_job(phase="Suspended", conditions=conditions), [])
    assert (plan.status.phase, plan.create) == (JobPhase.PENDING, nodes(0, 1))
    suspended = find(plan.status.conditions, "Suspended")
    assert suspended is not None and suspended.reason == "Resumed"
    assert "Resumed" in [e.reason for e in plan.events]


@pytest.mark.parametrize(
    ("policy", "expected"),
    [("None", []), ("Running", ["train-node-1"]), ("All", ["train-node-0", "train-node-1"])],
)
def test_clean_pod_policy_of_a_finished_job(policy: str, expected: list[str]) -> None:
    job = make_job({"runPolicy": {"cleanPodPolicy": policy}}, phase="Failed")
    assert deleted(plan_for(job, [node_pod(0, "Failed"), node_pod(1)])) == expected


@pytest.mark.parametrize(("ago", "delete"), [(99, False), (100, True)])
def test_a_finished_job_is_deleted_after_its_ttl(ago: float, delete: bool) -> None:
    done = (NOW - timedelta(seconds=ago)).isoformat()
    job = make_job(
        {"runPolicy": {"ttlSecondsAfterFinished": 100}}, phase="Succeeded", completionTime=done
    )
    plan = plan_for(job, [])
    assert plan.delete_job is delete
    assert plan.wake_in == pytest.approx(100 - ago)


def test_a_finished_job_never_changes_phase() -> None:
    job = make_job(phase="Succeeded", conditions=[cond("Succeeded", True, "NodesSucceeded")])
    plan = plan_for(job, [node_pod(0, "Failed", exit_code=1)])
    assert plan.status.phase is JobPhase.SUCCEEDED
    assert (plan.create, plan.events) == ([], [])


# -- spec changes, conditions, events ---------------------------------------------------------


def test_a_spec_change_waits_for_the_next_restart() -> None:
    job = make_job(phase="Running")
    job.metadata["generation"] = 2
    plan = plan_for(job, [node_pod(0), node_pod(1)])
    applied = find(plan.status.conditions, "SpecApplied")
    assert applied is not None and applied.reason == "PendingRestart"
    assert plan.status.observed_generation == 2
    assert plan.create == []


def test_the_largest_node_bounds_gpus_per_node() -> None:
    job = make_job({"gpusPerNode": 16})
    assert [p.message for p in cluster_problems(job, 8, None)] == [
        "spec.gpusPerNode: 16 GPUs, but the largest node has 8"
    ]
    assert cluster_problems(job, 0, None) == []  # no GPU node yet: an autoscaler may add some
    assert cluster_problems(job, 16, None) == []


def test_a_gang_scheduler_whose_api_is_absent_is_a_problem() -> None:
    job = make_job({"gangScheduling": {"scheduler": "volcano"}})
    assert [p.reason for p in cluster_problems(job, 0, False)] == ["GangSchedulerUnavailable"]
    assert cluster_problems(job, 0, True) == []
