"""The kstatus summary of both kinds: Ready, Reconciling and Stalled as each kind's
`decide()` writes them for every phase and reason, and what kstatus (Flux) concludes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bigmodel.api import (
    JOB_CONDITIONS,
    SERVICE_CONDITIONS,
    BigModelJob,
    BigModelJobStatus,
    BigModelService,
    ConditionType,
    JobPhase,
    Reason,
    parse_resource,
)
from bigmodel.api.crds import crds
from bigmodel.api.status import UNOBSERVED
from bigmodel.controller.conditions import find, owned_status
from bigmodel.controller.job.decisions import decide as decide_job
from bigmodel.controller.kstatus import UNSCHEDULABLE_GRACE, job_summary
from kubesandbox.apiserver.crdschema import CRDSchema
from support.kstatus import verdict
from support.statuses import (
    CASES,
    JOB_CASES,
    NOW,
    SERVICE_CASES,
    TIMING,
    UNSCHEDULABLE_REASON,
    Case,
    node_pod,
)

KSTATUS = ("Ready", "Reconciling", "Stalled")
WRITTEN = [*JOB_CASES, *SERVICE_CASES]
"""The statuses `decide()` wrote (CASES adds the moments before it runs)."""
FLAGS = {
    ("Current", "Healthy"): ("True", "False", "False"),
    ("Current", "Suspended"): ("False", "False", "False"),
    ("InProgress", "Progressing"): ("False", "True", "False"),
    ("Failed", "Degraded"): ("False", "False", "True"),
}
"""Ready, Reconciling and Stalled for each (kstatus verdict, Argo CD health)."""


def conditions(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in body["status"].get("conditions", ())}


def named(cases: list[Case], name: str) -> Case:
    return next(c for c in cases if c.name == name)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_kstatus_reads_each_phase_and_reason_as_meant(case: Case) -> None:
    assert verdict(case.body) == case.kstatus


@pytest.mark.parametrize("case", WRITTEN, ids=lambda c: c.name)
def test_ready_reconciling_and_stalled_summarize_the_state(case: Case) -> None:
    found = conditions(case.body)
    assert tuple(found[t]["status"] for t in KSTATUS) == FLAGS[case.kstatus, case.health]
    assert {found[t]["reason"] for t in KSTATUS} == {case.reason}
    assert len({found[t]["message"] for t in KSTATUS}) == 1


@pytest.mark.parametrize("case", WRITTEN, ids=lambda c: c.name)
def test_each_summary_condition_carries_the_observed_generation(case: Case) -> None:
    generation = case.body["metadata"]["generation"]
    status = case.body["status"]
    assert status["observedGeneration"] == generation
    for type_ in KSTATUS:
        assert conditions(case.body)[type_]["observedGeneration"] == status["observedGeneration"]


def test_a_succeeded_job_is_ready_and_not_reconciling() -> None:
    found = conditions(named(JOB_CASES, "job succeeded").body)
    assert (found["Ready"]["status"], found["Reconciling"]["status"]) == ("True", "False")
    assert found["Succeeded"]["status"] == "True"


def test_a_job_not_yet_looked_at_is_reconciling() -> None:
    summary = job_summary(BigModelJobStatus(), NOW)
    assert (summary.ready, summary.reconciling, summary.stalled) == (False, True, False)


@pytest.mark.parametrize(
    ("waited", "stalled"),
    [(UNSCHEDULABLE_GRACE - timedelta(seconds=1), False), (UNSCHEDULABLE_GRACE, True)],
)
def test_unschedulable_node_pods_stall_a_pending_job_after_the_grace(
    waited: timedelta, stalled: bool
) -> None:
    status = BigModelJobStatus.model_validate(
        {
            "phase": "Pending",
            "conditions": [
                {
                    "type": ConditionType.PODS_UNSCHEDULABLE,
                    "status": "True",
                    "reason": UNSCHEDULABLE_REASON,
                    "message": "0/2 nodes are available",
                    "lastTransitionTime": (NOW - waited).isoformat(),
                }
            ],
        }
    )
    summary = job_summary(status, NOW)
    assert (summary.reconciling, summary.stalled) == (not stalled, stalled)
    assert "0/2 nodes are available" in summary.message


def test_a_running_job_does_not_stall_on_unschedulable_extra_pods() -> None:
    status = BigModelJobStatus.model_validate(
        {
            "phase": JobPhase.RUNNING,
            "conditions": [
                {
                    "type": ConditionType.PODS_UNSCHEDULABLE,
                    "status": "True",
                    "reason": UNSCHEDULABLE_REASON,
                    "lastTransitionTime": "2020-01-01T00:00:00Z",
                },
                {
                    "type": ConditionType.RUNNING,
                    "status": "True",
                    "reason": Reason.NODES_RUNNING,
                    "lastTransitionTime": "2020-01-01T00:00:00Z",
                },
            ],
        }
    )
    summary = job_summary(status, NOW)
    assert (summary.ready, summary.stalled) == (True, False)


def test_the_summary_keeps_its_transition_time_while_the_state_holds() -> None:
    running = parse_resource(BigModelJob, named(JOB_CASES, "job running").body)
    later = decide_job(running, [node_pod(0), node_pod(1)], NOW + timedelta(minutes=5), TIMING)
    ready = find(later.status.conditions, ConditionType.READY)
    assert ready is not None and ready.last_transition_time == NOW


def test_the_summary_posts_no_events_of_its_own() -> None:
    pending = parse_resource(BigModelJob, named(JOB_CASES, "job pending").body)
    plan = decide_job(pending, [node_pod(0), node_pod(1)], NOW, TIMING)
    assert [e.reason for e in plan.events] == [Reason.NODES_RUNNING]


@pytest.mark.parametrize("case", SERVICE_CASES, ids=lambda c: c.name)
def test_a_service_reconciles_exactly_while_its_controller_says_progressing(case: Case) -> None:
    found = conditions(case.body)
    assert found["Reconciling"]["status"] == found["Progressing"]["status"]


@pytest.mark.parametrize(
    ("kind", "cases", "owned"),
    [
        (BigModelJob, JOB_CASES, JOB_CONDITIONS),
        (BigModelService, SERVICE_CASES, SERVICE_CONDITIONS),
    ],
    ids=["job", "service"],
)
def test_the_controllers_write_the_summary(
    kind: type[BigModelJob | BigModelService], cases: list[Case], owned: frozenset[str]
) -> None:
    for case in cases:
        written = owned_status(parse_resource(kind, case.body).status, owned)
        assert set(KSTATUS) <= {c["type"] for c in written["conditions"]}, case.name


@pytest.mark.parametrize("crd", crds(), ids=lambda c: c["spec"]["names"]["kind"])
def test_a_new_resource_is_in_progress_until_the_operator_has_seen_it(crd: Any) -> None:
    """Defaulted as the API server does, a resource just created has a generation kstatus
    sees unobserved (a resource without status would read as Current)."""
    schema = CRDSchema(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
    created = schema.default({"metadata": {"name": "x", "generation": 1}, "spec": {}})
    assert created["status"]["observedGeneration"] == UNOBSERVED
    assert verdict(created) == "InProgress"
