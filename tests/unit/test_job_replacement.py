"""`stragglerPolicy: Replace` for jobs: which straggler `decide()` moves off its machine, each
guard rail that stops it, and S measured after the move."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bigmodel.api import BigModelJob, InvalidResourceError, JobPhase, Reason, parse_resource
from bigmodel.controller.job.decisions import decide
from bigmodel.controller.job.plan import Plan
from bigmodel.controller.job.pods import NodePod, observe_pod
from bigmodel.controller.job.telemetry import policy_pending
from bigmodel.controller.job.timing import Timing
from bigmodel.manifests.frameworks.pytorch import node
from bigmodel.manifests.job import build_pod

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
TIMING = Timing(restart_backoff=10)
WINDOW = 10
"""spec.telemetry.windowSeconds of the jobs here."""
REPLACE = {"action": "Replace", "after": 2, "maxReplacements": 2}


def ago(seconds: float) -> str:
    return (NOW - timedelta(seconds=seconds)).isoformat()


def straggling_job(
    policy: dict[str, Any] | None = None,
    since: float = 100,
    cause: str | None = "Unknown",
    spec: dict[str, Any] | None = None,
    **status: Any,
) -> BigModelJob:
    """A Running 2-node job whose node 1 has been flagged for `since` seconds (no detail at
    all when `cause` is None), S = 1.5/s."""
    telemetry: dict[str, Any] = {
        "n": 2,
        "serviceQuality": 1.5,
        "stragglers": ["t-node-1"],
        "updatedAt": ago(1),
    }
    if cause is not None:
        detail = {"name": "t-node-1", "cause": cause, "excessSeconds": 0.5, "since": ago(since)}
        telemetry["stragglerDetails"] = [detail]
    body = {
        "metadata": {"name": "t", "namespace": "ml", "uid": "u", "generation": 1},
        "spec": {
            "image": "i",
            "command": ["python", "t.py"],
            "nodes": 2,
            "telemetry": {"windowSeconds": WINDOW, "stragglerPolicy": policy or REPLACE},
            **(spec or {}),
        },
        "status": {"phase": "Running", "telemetry": telemetry, **status},
    }
    return parse_resource(BigModelJob, body)


def pod(rank: int, phase: str = "Running", created: float = 1000, **fields: Any) -> NodePod:
    where = {"machine": f"machine-{rank}", "created": NOW - timedelta(seconds=created)}
    return NodePod(
        name=f"t-node-{rank}",
        uid=f"uid-{rank}",
        member=node(rank),
        phase=phase,
        **{**where, **fields},
    )


def run(job: BigModelJob, pods: list[NodePod] | None = None) -> Plan:
    return decide(job, [pod(0), pod(1)] if pods is None else pods, NOW, TIMING)


def replaced(plan: Plan) -> list[str]:
    return [e.message for e in plan.events if e.reason == Reason.STRAGGLER_REPLACED]


def test_a_straggler_flagged_for_after_windows_is_moved_off_its_machine() -> None:
    plan = run(straggling_job())
    [message] = replaced(plan)
    assert "t-node-1 moved off machine machine-1 (cause Unknown)" in message
    assert "S before 1.5/s" in message and "replacement 1 of 2" in message
    [record] = plan.status.straggler_replacements
    assert (record.pod, record.machine, record.cause) == ("t-node-1", "machine-1", "Unknown")
    assert (record.replaced_at, record.service_quality_before) == (NOW, 1.5)
    assert record.service_quality_after is None


def test_the_replacement_restarts_the_gang_without_counting_a_restart() -> None:
    plan = run(straggling_job(), [pod(0), pod(1)])
    assert plan.status.phase is JobPhase.RESTARTING
    assert sorted(p.name for p in plan.delete) == ["t-node-0", "t-node-1"]
    assert plan.status.restarts == 0
    restarting = next(c for c in plan.status.conditions if c.type == "Restarting")
    assert restarting.reason == Reason.STRAGGLER_REPLACED


def test_an_elastic_job_replaces_only_the_straggler_pod() -> None:
    job = straggling_job(spec={"elastic": {"minNodes": 1, "maxNodes": 2}})
    plan = run(job)
    assert [p.name for p in plan.delete] == ["t-node-1"]
    assert plan.status.phase is JobPhase.RUNNING and plan.status.restarts == 0


def test_a_straggler_without_a_detail_counts_as_unknown() -> None:
    # Listed in `stragglers` by an older trainer image or a task engine: no cause, no since.
    # The telemetry rounds fill `since`; until then there is no streak to measure.
    assert replaced(run(straggling_job(cause=None))) == []


@pytest.mark.parametrize(
    ("case", "job", "pods"),
    [
        ("policy None (the default)", straggling_job({"action": "None"}), None),
        ("maxReplacements 0", straggling_job({**REPLACE, "maxReplacements": 0}), None),
        ("input pipeline", straggling_job(cause="InputPipeline"), None),
        ("flagged too briefly", straggling_job(since=15), None),
        ("pod too new", straggling_job(), [pod(0), pod(1, created=25)]),
        ("a pod not running", straggling_job(), [pod(0, "Pending"), pod(1)]),
        ("a pod missing", straggling_job(), [pod(1)]),
        ("a pod leaving", straggling_job(), [pod(0), pod(1), pod(2, leaving=True)]),
        ("machine unknown", straggling_job(), [pod(0), pod(1, machine=None)]),
        ("restarting", straggling_job(phase="Restarting"), None),
        (
            "communication slow",
            straggling_job(
                conditions=[
                    {
                        "type": "CommunicationSlow",
                        "status": "True",
                        "reason": "SlowAllReduce",
                        "lastTransitionTime": ago(60),
                    }
                ]
            ),
            None,
        ),
        (
            "previous not measured yet",
            straggling_job(
                stragglerReplacements=[{"pod": "t-node-0", "machine": "m", "replacedAt": ago(50)}]
            ),
            None,
        ),
        (
            "maxReplacements reached",
            straggling_job(
                stragglerReplacements=[
                    {
                        "pod": "t-node-0",
                        "machine": m,
                        "replacedAt": ago(500),
                        "serviceQualityAfter": 2.0,
                    }
                    for m in ("a", "b")
                ]
            ),
            None,
        ),
    ],
)
def test_no_replacement_when_a_guard_rail_holds(
    case: str, job: BigModelJob, pods: list[NodePod] | None
) -> None:
    plan = run(job, pods)
    assert replaced(plan) == [], case
    assert not plan.status.straggler_replacements[len(job.status.straggler_replacements) :]
    restarting = [c.reason for c in plan.status.conditions if c.type == "Restarting"]
    assert Reason.STRAGGLER_REPLACED not in restarting, case


def test_a_straggler_not_due_yet_wakes_the_job_when_it_will_be() -> None:
    plan = run(straggling_job(since=15))  # due at since + 2 windows: in 5 s
    assert plan.wake_in == pytest.approx(5)


def test_the_largest_excess_goes_first_and_only_one_at_a_time() -> None:
    job = straggling_job()
    details = [
        {"name": "t-node-0", "cause": "HostCpu", "excessSeconds": 0.9, "since": ago(100)},
        {"name": "t-node-1", "cause": "Unknown", "excessSeconds": 0.5, "since": ago(100)},
    ]
    job.status.telemetry.stragglers = ["t-node-0", "t-node-1"]
    job.status.telemetry.straggler_details = [
        type(job.status.telemetry.straggler_details[0]).model_validate(d) for d in details
    ]
    plan = run(job)
    [message] = replaced(plan)
    assert "t-node-0 moved off machine machine-0 (cause HostCpu)" in message


def test_s_after_is_recorded_a_window_after_the_new_pods_started() -> None:
    record = {
        "pod": "t-node-1",
        "machine": "machine-1",
        "replacedAt": ago(60),
        "serviceQualityBefore": 1.5,
    }
    job = straggling_job(stragglerReplacements=[record])
    job.status.telemetry.stragglers, job.status.telemetry.straggler_details = [], []
    job.status.telemetry.service_quality = 3.0
    too_soon = run(job, [pod(0, created=5), pod(1, created=5)])
    assert too_soon.status.straggler_replacements[0].service_quality_after is None
    plan = run(job, [pod(0, created=30), pod(1, created=30)])
    assert plan.status.straggler_replacements[0].service_quality_after == 3.0
    [event] = [e for e in plan.events if e.reason == Reason.REPLACEMENT_MEASURED]
    assert event.message == (
        "S after moving t-node-1 off machine machine-1: 3/s, before 1.5/s (x2.00)"
    )


def test_every_pod_of_the_job_avoids_the_machines_of_its_replacements() -> None:
    job = straggling_job(
        spec={
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {
                                "matchExpressions": [
                                    {"key": "zone", "operator": "In", "values": ["a"]}
                                ]
                            }
                        ]
                    }
                }
            }
        },
        stragglerReplacements=[
            {"pod": "t-node-1", "machine": m, "replacedAt": ago(60)} for m in ("m2", "m1")
        ],
    )
    built = build_pod(job, node(0))
    terms = built["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]["nodeSelectorTerms"]
    assert terms == [
        {
            "matchExpressions": [
                {"key": "zone", "operator": "In", "values": ["a"]},
                {"key": "kubernetes.io/hostname", "operator": "NotIn", "values": ["m1", "m2"]},
            ]
        }
    ]
    assert "affinity" not in build_pod(straggling_job(), node(0))["spec"]


def test_a_pod_body_tells_its_machine_and_creation_time() -> None:
    body = {
        "metadata": {
            "name": "t-node-1",
            "uid": "u1",
            "creationTimestamp": "2026-01-01T11:59:00Z",
            "labels": {"bigmodel.dev/node-rank": "1", "bigmodel.dev/role": "node"},
        },
        "spec": {"nodeName": "machine-1"},
        "status": {"phase": "Running"},
    }
    observed = observe_pod(body)
    assert observed is not None
    assert (observed.machine, observed.created) == ("machine-1", NOW - timedelta(seconds=60))


@pytest.mark.parametrize(
    ("policy", "field"),
    [
        ({"action": "Move"}, "stragglerPolicy.action"),
        ({"after": 0}, "stragglerPolicy.after"),
        ({"maxReplacements": 17}, "stragglerPolicy.maxReplacements"),
    ],
)
def test_a_bad_policy_is_refused_naming_the_field(policy: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidResourceError, match=field):
        straggling_job(policy)


def test_the_gang_comes_back_after_the_back_off_saying_why_it_left() -> None:
    replaced_plan = run(straggling_job())
    job = straggling_job()
    job.status = replaced_plan.status
    for condition in job.status.conditions:  # the back-off has passed
        condition.last_transition_time = NOW - timedelta(seconds=60)
    plan = decide(job, [], NOW, TIMING)
    assert plan.create == [node(0), node(1)] and plan.status.restarts == 0
    recreated = next(c for c in plan.status.conditions if c.type == "Restarting")
    assert recreated.message == "straggler replaced: node pods recreated"


def test_a_telemetry_round_asks_for_a_look_only_when_the_policy_has_work() -> None:
    pending = {"pod": "t-node-1", "machine": "m", "replacedAt": ago(10)}
    assert policy_pending(straggling_job(), flagged=True)
    assert not policy_pending(straggling_job(), flagged=False)
    assert not policy_pending(straggling_job({"action": "None"}), flagged=True)
    assert policy_pending(straggling_job(stragglerReplacements=[pending]), flagged=False)
