"""Resources as the operator really leaves them, one per phase and reason: each status is
what the kind's pure `decide()` writes for the situation, so the kstatus and Argo CD health
tests judge real statuses, not hand-written ones.

Each `Case` also says what GitOps tools should make of it: kstatus's verdict (what Flux waits
on) and the Argo CD health of the chart's Lua checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bigmodel.api import (
    BigModelJob,
    BigModelService,
    ConditionType,
    Reason,
    parse_resource,
)
from bigmodel.api.status import UNOBSERVED
from bigmodel.controller.job.decisions import decide as decide_job
from bigmodel.controller.job.plan import Problem
from bigmodel.controller.job.pods import NodePod
from bigmodel.controller.kstatus import UNSCHEDULABLE_GRACE
from bigmodel.controller.service.decisions import Scaling, Seen
from bigmodel.controller.service.decisions import decide as decide_service
from bigmodel.controller.service.replicas import ChildView, ReplicaPod
from bigmodel.manifests.service import SPEC_HASH, TEMPLATE_HASH, RuntimeImages, build_deployment
from bigmodel.manifests.service import build_service as build_front
from support.jobs import NOW, TIMING, make_job, node_pod

IMAGES = RuntimeImages()
UNSCHEDULABLE = "0/4 nodes are available: 4 Insufficient nvidia.com/gpu."
UNSCHEDULABLE_REASON = "Unschedulable"
"""The reason the job controller gives PodsUnschedulable (the pod condition's own)."""


@dataclass(frozen=True)
class Case:
    """A resource body (metadata, spec, status as JSON) and what GitOps tools make of it."""

    name: str
    body: dict[str, Any]
    kstatus: str
    """kstatus's verdict: InProgress, Current or Failed."""
    health: str
    """Argo CD health: Healthy, Progressing, Degraded or Suspended."""
    reason: str | None
    """Reason of the operator's Ready, Reconciling and Stalled (None: not written yet)."""


# -- BigModelJob ------------------------------------------------------------------------------


def _unschedulable(ago: timedelta) -> dict[str, Any]:
    since = (NOW - ago).isoformat()
    return {"type": ConditionType.PODS_UNSCHEDULABLE, "status": "True", "lastTransitionTime": since,
            "reason": UNSCHEDULABLE_REASON, "message": UNSCHEDULABLE}  # fmt: skip


def job_body(
    job: BigModelJob, pods: list[NodePod], problems: tuple[Problem, ...] = ()
) -> dict[str, Any]:
    """The job as the API returns it after the operator wrote what `decide` planned."""
    plan = decide_job(job, pods, NOW, TIMING, problems)
    body: dict[str, Any] = job.model_dump(mode="json", by_alias=True, exclude_none=True)
    body["status"] = plan.status.model_dump(mode="json", by_alias=True, exclude_none=True)
    return body


def _running(spec: dict[str, Any] | None = None) -> BigModelJob:
    return make_job(spec, phase="Running", startTime=(NOW - timedelta(minutes=2)).isoformat())


def _exit(code: int) -> list[NodePod]:
    return [node_pod(0), node_pod(1, "Failed", exit_code=code)]


def _job_cases() -> list[Case]:
    elastic = {"nodes": 3, "elastic": {"minNodes": 3, "maxNodes": 4}}
    gang = Problem(Reason.GANG_SCHEDULER_UNAVAILABLE, "spec.gangScheduling.scheduler: volcano")
    waiting = [node_pod(r, "Pending", unschedulable=UNSCHEDULABLE) for r in (0, 1)]
    cases = [
        ("pending", make_job(), [], "InProgress", "Progressing", Reason.NODES_PENDING),
        ("pending, unschedulable within the grace",
         make_job(phase="Pending", conditions=[_unschedulable(timedelta(minutes=1))]), waiting,
         "InProgress", "Progressing", UNSCHEDULABLE_REASON),
        ("pending, unschedulable beyond the grace",
         make_job(phase="Pending", conditions=[_unschedulable(UNSCHEDULABLE_GRACE)]), waiting,
         "Failed", "Degraded", UNSCHEDULABLE_REASON),
        ("running", make_job(phase="Pending"), [node_pod(0), node_pod(1)],
         "Current", "Healthy", Reason.NODES_RUNNING),
        ("running below elastic minNodes", _running(elastic), [node_pod(0), node_pod(1)],
         "InProgress", "Progressing", Reason.BELOW_MIN_NODES),
        ("restarting", _running(), _exit(1), "InProgress", "Progressing", Reason.GANG_RESTART),
        ("suspended", _running({"runPolicy": {"suspend": True}}), [node_pod(0), node_pod(1)],
         "Current", "Suspended", Reason.SUSPENDED),
        ("succeeded", _running(), [node_pod(0, "Succeeded"), node_pod(1, "Succeeded")],
         "Current", "Healthy", Reason.NODES_SUCCEEDED),
        ("failed: invalid spec",
         make_job({"env": [{"name": "PYTHONUNBUFFERED", "value": "0"}]}), [],
         "Failed", "Degraded", Reason.INVALID),
        ("failed: backoff limit", _running({"runPolicy": {"backoffLimit": 0}}), _exit(1),
         "Failed", "Degraded", Reason.BACKOFF_LIMIT_EXCEEDED),
        ("failed: non-retryable exit code", _running({"runPolicy": {"restartPolicy": "ExitCode"}}),
         _exit(1), "Failed", "Degraded", Reason.NON_RETRYABLE_EXIT_CODE),
        ("failed: pod failed", _running({"runPolicy": {"restartPolicy": "Never"}}), _exit(1),
         "Failed", "Degraded", Reason.POD_FAILED),
        ("failed: deadline", _running({"runPolicy": {"activeDeadlineSeconds": 60}}),
         [node_pod(0), node_pod(1)], "Failed", "Degraded", Reason.DEADLINE_EXCEEDED),
    ]  # fmt: skip
    built = [
        Case(f"job {name}", job_body(job, pods), kstatus, health, reason)
        for name, job, pods, kstatus, health, reason in cases
    ]
    built.append(
        Case(
            "job failed: no gang scheduler",
            job_body(make_job(), [], (gang,)),
            "Failed",
            "Degraded",
            Reason.GANG_SCHEDULER_UNAVAILABLE,
        )
    )
    return built


# -- BigModelService --------------------------------------------------------------------------


def _service(spec: dict[str, Any] | None = None) -> BigModelService:
    body = {
        "metadata": {"name": "chat", "namespace": "ml", "uid": "u", "generation": 1},
        "spec": {"model": {"name": "tiny", "uri": "/m"}, **(spec or {})},
    }
    return parse_resource(BigModelService, body)


def _template(service: BigModelService) -> str:
    template = build_deployment(service, 1, IMAGES)["spec"]["template"]
    return str(template["metadata"]["annotations"][TEMPLATE_HASH])


def _replica(i: int, template: str, ready: bool = True, **fields: Any) -> ReplicaPod:
    return ReplicaPod(f"chat-{i}", f"u{i}", "Running", template, ready=ready, **fields)


def _seen(
    service: BigModelService, replicas: int, pods: list[ReplicaPod], stalled: str | None = None
) -> Seen:
    """The children as the controller applied them for `replicas`, and their pods."""
    spec_hash = build_deployment(service, replicas, IMAGES)["metadata"]["annotations"][SPEC_HASH]
    deployment = ChildView("Deployment", "chat", spec_hash, replicas, 1, 1, stalled=stalled)
    front = ChildView("Service", "chat", build_front(service)["metadata"]["annotations"][SPEC_HASH])
    return Seen(deployment, front, pods)


def service_body(service: BigModelService, seen: Seen, desired: int) -> dict[str, Any]:
    """The service as the API returns it after the operator wrote what `decide` planned."""
    plan = decide_service(service, seen, Scaling(desired), IMAGES, NOW)
    body: dict[str, Any] = service.model_dump(mode="json", by_alias=True, exclude_none=True)
    body["status"] = plan.status.model_dump(mode="json", by_alias=True, exclude_none=True)
    return body


def _service_cases() -> list[Case]:
    service = _service()
    current = _template(service)
    old = _template(_service({"args": ["--old"]}))
    crashed = {"ready": False, "exit_code": 3, "message": "cannot load /m: no checkpoint"}
    pending = ReplicaPod("chat-0", "u0", "Pending", current, unschedulable=UNSCHEDULABLE)
    invalid = _service({"podTemplate": {"spec": {"terminationGracePeriodSeconds": 1}}})
    cases = [
        ("creating", Seen(), 1, "InProgress", "Progressing", Reason.CREATING),
        ("rolling out", _seen(service, 1, [_replica(0, old), _replica(1, current, False)]), 1,
         "InProgress", "Progressing", Reason.ROLLING_OUT),
        ("scaling", _seen(service, 2, [_replica(0, current), _replica(1, current, False)]), 2,
         "InProgress", "Progressing", Reason.SCALING),
        ("ready", _seen(service, 2, [_replica(0, current), _replica(1, current)]), 2,
         "Current", "Healthy", Reason.REPLICAS_READY),
        ("scaled to zero", _seen(service, 0, []), 0, "Current", "Healthy", Reason.REPLICAS_READY),
        ("failed: model load", _seen(service, 1, [_replica(0, current, **crashed)]), 1,
         "Failed", "Degraded", Reason.MODEL_LOAD_FAILED),
        ("failed: progress deadline", _seen(service, 1, [pending], "timed out progressing"), 1,
         "Failed", "Degraded", Reason.PROGRESS_DEADLINE_EXCEEDED),
    ]  # fmt: skip
    built = [
        Case(f"service {name}", service_body(service, seen, desired), kstatus, health, reason)
        for name, seen, desired, kstatus, health, reason in cases
    ]
    built.append(
        Case(
            "service failed: invalid spec",
            service_body(invalid, Seen(), 1),
            "Failed",
            "Degraded",
            Reason.INVALID,
        )
    )
    return built


# -- Before and after the operator acts -------------------------------------------------------


def unobserved(case: Case) -> Case:
    """The resource just applied: its status only the CRD's default, no condition yet."""
    body = {**case.body, "status": {"observedGeneration": UNOBSERVED}}
    return Case(f"{case.name}, not yet seen", body, "InProgress", "Progressing", None)


def spec_changed(case: Case) -> Case:
    """The resource after a new spec was applied and before the operator acted on it."""
    metadata = {**case.body["metadata"], "generation": case.body["metadata"]["generation"] + 1}
    body = {**case.body, "metadata": metadata}
    return Case(f"{case.name}, spec changed", body, "InProgress", "Progressing", case.reason)


def _named(cases: list[Case], name: str) -> Case:
    return next(c for c in cases if c.name == name)


JOB_CASES = _job_cases()
SERVICE_CASES = _service_cases()
CASES = [
    *JOB_CASES,
    *SERVICE_CASES,
    unobserved(_named(JOB_CASES, "job pending")),
    unobserved(_named(SERVICE_CASES, "service creating")),
    spec_changed(_named(JOB_CASES, "job running")),
    spec_changed(_named(SERVICE_CASES, "service ready")),
]
"""Every case: each phase and reason of both kinds, and the moments before the operator
acts on a new resource or a new generation."""
