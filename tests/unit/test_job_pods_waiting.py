"""The job's decisions about pods that wait (unschedulable, containers that cannot start),
how a pod is observed, and the restart timing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bigmodel.api import ConditionStatus
from bigmodel.controller.conditions import find
from bigmodel.controller.job.plan import Plan
from bigmodel.controller.job.pods import observe_pod
from bigmodel.controller.job.timing import Timing
from bigmodel.manifests.frameworks.pytorch import node
from support.jobs import (
    NOW,
    TIMING,
    cond,
    make_job,
    node_pod,
    plan_for,
)

# -- why node pods wait ---------------------------------------------------------------------

UNFIT = "0/1 nodes are available: 1 Insufficient cpu."


def condition(plan: Plan, type_: str) -> Any:
    found = find(plan.status.conditions, type_)
    assert found is not None, f"no {type_} condition"
    return found


def test_unschedulable_node_pods_are_named_with_the_schedulers_message() -> None:
    pods = [node_pod(0), node_pod(1, "Pending", unschedulable=UNFIT)]
    plan = plan_for(make_job(phase="Pending"), pods)
    found = condition(plan, "PodsUnschedulable")
    assert (found.status, found.reason) == (ConditionStatus.TRUE, "Unschedulable")
    assert found.message == f"1 of 2 node pods cannot be scheduled: train-node-1: {UNFIT}"
    assert found.last_transition_time == NOW
    [event] = [e for e in plan.events if e.reason == "Unschedulable"]
    assert (event.type, event.message) == ("Warning", found.message)


def test_pods_with_the_same_message_are_named_together() -> None:
    pods = [node_pod(r, "Pending", unschedulable=UNFIT) for r in range(5)]
    plan = plan_for(make_job({"nodes": 5}, phase="Pending"), pods)
    assert condition(plan, "PodsUnschedulable").message == (
        "5 of 5 node pods cannot be scheduled: train-node-0, train-node-1, train-node-2"
        f" (and 2 more): {UNFIT}"
    )


def test_still_unschedulable_keeps_the_time_since_and_posts_no_new_event() -> None:
    since = cond("PodsUnschedulable", True, "Unschedulable", ago=120)
    job = make_job(phase="Pending", conditions=[since])
    plan = plan_for(job, [node_pod(0), node_pod(1, "Pending", unschedulable=UNFIT)])
    assert condition(plan, "PodsUnschedulable").last_transition_time == NOW - timedelta(seconds=120)
    assert not [e for e in plan.events if e.reason == "Unschedulable"]


def test_the_condition_clears_when_the_pods_are_scheduled() -> None:
    job = make_job(phase="Pending", conditions=[cond("PodsUnschedulable", True, "Unschedulable")])
    plan = plan_for(job, [node_pod(0), node_pod(1)])
    found = condition(plan, "PodsUnschedulable")
    assert (found.status, found.reason) == (ConditionStatus.FALSE, "PodsScheduled")
    assert [e.type for e in plan.events if e.reason == "PodsScheduled"] == ["Normal"]


def test_a_job_whose_pods_never_waited_has_no_waiting_conditions() -> None:
    plan = plan_for(make_job(phase="Pending"), [node_pod(0), node_pod(1, "Pending")])
    assert find(plan.status.conditions, "PodsUnschedulable") is None
    assert find(plan.status.conditions, "PodsFailingToStart") is None


def test_containers_the_kubelet_cannot_start_are_named_with_its_reason() -> None:
    why = 'ImagePullBackOff: Back-off pulling image "trainer:typo"'
    plan = plan_for(
        make_job(phase="Pending"), [node_pod(0, "Pending", start_failure=why), node_pod(1)]
    )
    found = condition(plan, "PodsFailingToStart")
    assert (found.status, found.reason) == (ConditionStatus.TRUE, "ContainersCannotStart")
    assert found.message == f"1 of 2 node pods cannot start their containers: train-node-0: {why}"
    assert [e.type for e in plan.events if e.reason == "ContainersCannotStart"] == ["Warning"]
    assert find(plan.status.conditions, "PodsUnschedulable") is None


def test_start_failures_clear_once_the_containers_start() -> None:
    failing = cond("PodsFailingToStart", True, "ContainersCannotStart")
    plan = plan_for(make_job(phase="Running", conditions=[failing]), [node_pod(0), node_pod(1)])
    found = condition(plan, "PodsFailingToStart")
    assert (found.status, found.reason) == (ConditionStatus.FALSE, "ContainersStarting")


def test_pods_being_deleted_do_not_count_as_waiting() -> None:
    job = make_job(phase="Restarting", restarts=1)
    plan = plan_for(job, [node_pod(0, "Pending", unschedulable=UNFIT, leaving=True)])
    assert find(plan.status.conditions, "PodsUnschedulable") is None


# -- observing pods ---------------------------------------------------------------------------


def pod_body(status: dict[str, Any], **meta: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "train-node-1",
            "uid": "x",
            "labels": {"bigmodel.dev/node-rank": "1", "bigmodel.dev/role": "worker"},
            "annotations": {"bigmodel.dev/generation": "4"},
            **meta,
        },
        "status": status,
    }


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({}, {"phase": "Pending"}),
        (
            {"phase": "Failed", "containerStatuses": [
                {"name": "main", "state": {"terminated": {"exitCode": 3}}}]},
            {"phase": "Failed", "exit_code": 3},
        ),
        ({"phase": "Failed", "reason": "Evicted"}, {"disruption": "Evicted"}),
        ({"phase": "Unknown"}, {"disruption": "NodeLost"}),
        (
            {"phase": "Running", "conditions": [
                {"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler"}]},
            {"disruption": "PreemptionByScheduler"},
        ),
        (
            {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
                "reason": "Unschedulable", "message": "0/1 nodes are available"}]},
            {"unschedulable": "0/1 nodes are available", "start_failure": None},
        ),
        (
            {"phase": "Pending", "containerStatuses": [{"name": "main", "state": {"waiting": {
                "reason": "ErrImagePull", "message": "pull access denied"}}}]},
            {"unschedulable": None, "start_failure": "ErrImagePull: pull access denied"},
        ),
    ],
)  # fmt: skip
def test_observe_pod(status: dict[str, Any], expected: dict[str, Any]) -> None:
    observed = observe_pod(pod_body(status))
    assert observed is not None
    assert (observed.member, observed.generation) == (node(1), 4)
    for key, value in expected.items():
        assert getattr(observed, key) == value


def test_a_pod_without_a_rank_is_not_a_node_pod() -> None:
    assert observe_pod({"metadata": {"name": "x", "labels": {}}}) is None


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [TIMING.backoff(n) for n in (1, 2, 3, 4, 5)] == [10, 20, 40, 60, 60]


def test_timing_reads_the_environment() -> None:
    assert Timing.from_env({"BIGMODEL_RESTART_BACKOFF": "0.5"}).restart_backoff == 0.5
    with pytest.raises(ValueError, match="BIGMODEL_ELASTIC_GRACE"):
        Timing.from_env({"BIGMODEL_ELASTIC_GRACE": "soon"})
