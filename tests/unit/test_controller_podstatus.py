"""Why a pod does not run yet, read from its status: the scheduler's message, the kubelet's
start failures, and how messages name the pods."""

from __future__ import annotations

from typing import Any

import pytest

from bigmodel.controller.podstatus import (
    QUOTED_PODS,
    quote_pods,
    start_failure,
    unschedulable,
    waiting_reason,
)


def scheduled(status: str, reason: str = "", message: str = "") -> dict[str, Any]:
    condition = {"type": "PodScheduled", "status": status, "reason": reason, "message": message}
    return {"conditions": [condition]}


def waiting(reason: str, message: str = "", name: str = "main") -> dict[str, Any]:
    return {"name": name, "state": {"waiting": {"reason": reason, "message": message}}}


def test_the_schedulers_message_of_an_unschedulable_pod() -> None:
    status = scheduled("False", "Unschedulable", "0/2 nodes are available: 2 Insufficient cpu.")
    assert unschedulable(status) == "0/2 nodes are available: 2 Insufficient cpu."


@pytest.mark.parametrize(
    "status",
    [{}, scheduled("True"), scheduled("False", "SchedulerError", "binding failed")],
)
def test_a_scheduled_or_unjudged_pod_is_not_unschedulable(status: dict[str, Any]) -> None:
    assert unschedulable(status) is None


def test_the_waiting_reason_of_a_container() -> None:
    assert waiting_reason(waiting("ContainerCreating")) == "ContainerCreating"
    assert waiting_reason({"name": "main", "state": {"running": {}}}) is None


@pytest.mark.parametrize(
    "reason",
    [
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
    ],
)
def test_start_failures_quote_the_kubelets_reason_and_message(reason: str) -> None:
    status = {"containerStatuses": [waiting(reason, " it failed ")]}
    assert start_failure(status) == f"{reason}: it failed"


@pytest.mark.parametrize("reason", ["ContainerCreating", "CrashLoopBackOff", "PodInitializing"])
def test_waiting_that_passes_by_itself_or_follows_a_start_is_no_start_failure(
    reason: str,
) -> None:
    assert start_failure({"containerStatuses": [waiting(reason, "x")]}) is None


def test_an_init_container_failing_to_start_is_reported_first() -> None:
    status = {
        "initContainerStatuses": [waiting("CreateContainerConfigError", 'secret "s" not found')],
        "containerStatuses": [waiting("PodInitializing")],
    }
    assert start_failure(status) == 'CreateContainerConfigError: secret "s" not found'


def test_pods_are_quoted_together_by_reason_and_counted_past_the_limit() -> None:
    named = [(f"p{i}", "no room") for i in range(QUOTED_PODS + 2)] + [("q", "bad image")]
    assert quote_pods(named) == "p0, p1, p2 (and 2 more): no room; q: bad image"
