"""The BigModelService lifecycle: `decide(service, seen, scaling, ...)` for each situation,
and the views of replica pods and children it decides from."""

from __future__ import annotations

from typing import Any

from bigmodel.api import (
    BigModelService,
    ConditionStatus,
    ConditionType,
    Reason,
    ServicePhase,
    parse_resource,
)
from bigmodel.api.service import AutoscalingStatus, ScalingMetric
from bigmodel.controller.conditions import find
from bigmodel.controller.service.autoscaler import ScaleDecision
from bigmodel.controller.service.decisions import Plan, Scaling, Seen, decide, scaling
from bigmodel.controller.service.replicas import (
    ChildView,
    ReplicaPod,
    observe_child,
    observe_replica,
)
from bigmodel.manifests.service import (
    SPEC_HASH,
    TEMPLATE_HASH,
    RuntimeImages,
    build_deployment,
    build_service,
)
from support.jobs import NOW

IMAGES = RuntimeImages()


def make(spec: dict[str, Any] | None = None, **status: Any) -> BigModelService:
    body = {
        "metadata": {"name": "chat", "namespace": "ml", "uid": "u", "generation": 2},
        "spec": {"model": {"name": "tiny", "uri": "/m"}, **(spec or {})},
        "status": status,
    }
    return parse_resource(BigModelService, body)


def applied(service: BigModelService, replicas: int, **status: Any) -> Seen:
    """Children as the controller applied them, with the Deployment's status."""
    deployment = build_deployment(service, replicas, IMAGES)
    front = build_service(service)
    view = ChildView(
        "Deployment",
        "chat",
        deployment["metadata"]["annotations"][SPEC_HASH],
        replicas=replicas,
        generation=1,
        observed_generation=1,
        **status,
    )
    front_view = ChildView("Service", "chat", front["metadata"]["annotations"][SPEC_HASH])
    return Seen(view, front_view)


def current(service: BigModelService) -> str:
    template = build_deployment(service, 1, IMAGES)["spec"]["template"]
    return template["metadata"]["annotations"][TEMPLATE_HASH]


def replica(i: int, template: str, **fields: Any) -> ReplicaPod:
    values: dict[str, Any] = {"phase": "Running", "ready": True, "ip": f"10.0.0.{i}"}
    return ReplicaPod(name=f"chat-{i}", uid=f"u{i}", template=template, **(values | fields))


def with_pods(seen: Seen, *pods: ReplicaPod) -> Seen:
    return Seen(seen.deployment, seen.front, pods)


def run(service: BigModelService, seen: Seen, desired: int = 1, **scaling: Any) -> Plan:
    return decide(service, seen, Scaling(desired, **scaling), IMAGES, NOW)


def reason(plan: Plan, type_: str) -> str | None:
    found = find(plan.status.conditions, ConditionType(type_))
    return found.reason if found else None


def test_a_new_service_applies_its_deployment_and_service_and_is_pending() -> None:
    plan = run(make(), Seen())
    assert plan.deployment is not None and plan.front is not None
    assert plan.deployment["spec"]["replicas"] == 1
    assert plan.status.phase is ServicePhase.PENDING
    assert plan.status.url == "http://chat.ml.svc:8000"
    assert (
        plan.status.selector
        == "app.kubernetes.io/managed-by=bigmodel-operator,bigmodel.dev/service=chat"
    )
    assert reason(plan, "Ready") == Reason.CREATING


def test_unchanged_children_are_not_applied_again() -> None:
    service = make()
    plan = run(service, with_pods(applied(service, 1), replica(0, current(service))))
    assert (plan.deployment, plan.front) == (None, None)


def test_every_replica_ready_on_the_current_spec_is_ready() -> None:
    service = make({"replicas": 2})
    template = current(service)
    seen = with_pods(applied(service, 2), replica(0, template), replica(1, template))
    plan = run(service, seen, 2)
    assert plan.status.phase is ServicePhase.READY
    assert (plan.status.ready_replicas, plan.status.updated_replicas) == (2, 2)
    assert reason(plan, "Progressing") == Reason.ROLLOUT_COMPLETE
    assert reason(plan, "ModelLoaded") == Reason.MODEL_LOADED
    assert reason(plan, "Available") == Reason.REPLICAS_AVAILABLE


def test_scaling_changes_only_the_replica_count_and_reports_it() -> None:
    service = make({"replicas": 3}, desiredReplicas=2)
    template = current(service)
    seen = with_pods(applied(service, 2), replica(0, template), replica(1, template))
    plan = run(service, seen, 3, why="spec.replicas")
    assert plan.deployment is not None and plan.deployment["spec"]["replicas"] == 3
    assert plan.deployment["spec"]["template"]["metadata"]["annotations"][TEMPLATE_HASH] == template
    assert plan.status.phase is ServicePhase.PROGRESSING
    assert [(e.reason, e.message) for e in plan.events][:1] == [
        (Reason.SCALED_UP, "2 -> 3: spec.replicas")
    ]


def test_a_spec_change_rolls_out_while_old_replicas_serve() -> None:
    old = make({"args": ["--max-batch-size", "4"]})
    new = make({"args": ["--max-batch-size", "8"]})
    seen = with_pods(
        applied(old, 1), replica(0, current(old)), replica(1, current(new), ready=False)
    )
    plan = run(new, seen)
    assert plan.deployment is not None
    assert plan.status.phase is ServicePhase.PROGRESSING
    assert reason(plan, "Progressing") == Reason.ROLLING_OUT
    assert reason(plan, "Available") == Reason.REPLICAS_AVAILABLE


def test_every_current_replica_failing_to_load_fails_with_the_servers_reason() -> None:
    service = make({"replicas": 2})
    template = current(service)
    crashed = {"ready": False, "exit_code": 3, "restarts": 2, "waiting": "CrashLoopBackOff"}
    seen = with_pods(
        applied(service, 2),
        replica(0, template, message="cannot load /m: no checkpoint step-*.pt", **crashed),
        replica(1, template, **crashed),
    )
    plan = run(service, seen, 2)
    assert plan.status.phase is ServicePhase.FAILED
    assert reason(plan, "ModelLoaded") == Reason.MODEL_LOAD_FAILED
    ready = find(plan.status.conditions, ConditionType("Ready"))
    assert ready is not None and "cannot load /m: no checkpoint step-*.pt" in ready.message
    assert ("Warning", Reason.MODEL_LOAD_FAILED) in [(e.type, e.reason) for e in plan.events]


def test_one_replica_still_loading_is_not_a_failure() -> None:
    service = make({"replicas": 2})
    template = current(service)
    seen = with_pods(
        applied(service, 2),
        replica(0, template, ready=False, exit_code=3, restarts=1),
        replica(1, template, ready=False),
    )
    assert run(service, seen, 2).status.phase is ServicePhase.PROGRESSING


def test_a_fixed_spec_recovers_from_failed() -> None:
    service = make({"model": {"name": "tiny", "uri": "/good"}}, phase="Failed")
    seen = with_pods(applied(service, 1), replica(0, current(service)))
    assert run(service, seen).status.phase is ServicePhase.READY


def test_a_stalled_rollout_fails_quoting_the_scheduler() -> None:
    service = make()
    stuck = replica(
        0,
        current(service),
        phase="Pending",
        ready=False,
        unschedulable="0/2 nodes are available: 2 Insufficient nvidia.com/gpu.",
    )
    seen = applied(service, 1, stalled="ReplicaSet chat-1 has timed out progressing.")
    plan = run(service, with_pods(seen, stuck))
    assert plan.status.phase is ServicePhase.FAILED
    ready = find(plan.status.conditions, ConditionType("Ready"))
    assert ready is not None and "Insufficient nvidia.com/gpu" in ready.message


def test_an_invalid_spec_fails_and_leaves_the_children_alone() -> None:
    service = make({"podTemplate": {"spec": {"terminationGracePeriodSeconds": 1}}})
    plan = run(service, Seen())
    assert (plan.deployment, plan.front) == (None, None)
    assert plan.status.phase is ServicePhase.FAILED
    assert reason(plan, "Ready") == Reason.INVALID


def test_scaling_to_zero_is_ready_with_no_replicas() -> None:
    service = make({"replicas": 0})
    plan = run(service, applied(service, 0), 0)
    assert plan.status.phase is ServicePhase.READY
    assert reason(plan, "ModelLoaded") == Reason.NO_REPLICAS


def test_an_autoscaler_at_its_bound_says_so() -> None:
    service = make({"autoscaling": {"maxReplicas": 3, "target": 8, "metric": "inFlight"}})
    status = AutoscalingStatus(metric=ScalingMetric.IN_FLIGHT, target=8, recommended_replicas=5)
    plan = run(service, Seen(), 3, status=status, limited=Reason.TOO_MANY_REPLICAS)
    limited = find(plan.status.conditions, ConditionType("ScalingLimited"))
    assert limited is not None and limited.status is ConditionStatus.TRUE
    assert limited.message == "the metric asks for 5 replicas; held at maxReplicas 3"
    assert plan.status.autoscaling == status


def test_a_pod_body_gives_its_replica_view() -> None:
    body = {
        "metadata": {"name": "chat-1", "uid": "p", "annotations": {TEMPLATE_HASH: "abc"}},
        "status": {
            "phase": "Running",
            "podIP": "10.1.1.1",
            "containerStatuses": [
                {
                    "name": "server",
                    "ready": False,
                    "restartCount": 2,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {"terminated": {"exitCode": 3, "message": "no model\n"}},
                }
            ],
        },
    }
    pod = observe_replica(body)
    assert (pod.template, pod.exit_code, pod.message, pod.waiting) == (
        "abc",
        3,
        "no model",
        "CrashLoopBackOff",
    )
    assert pod.crashed and pod.restarts == 2


def test_a_deployment_body_gives_its_progress() -> None:
    body = {
        "kind": "Deployment",
        "metadata": {"name": "chat", "generation": 3, "annotations": {SPEC_HASH: "h"}},
        "spec": {"replicas": 2},
        "status": {
            "observedGeneration": 2,
            "replicas": 2,
            "conditions": [{"type": "Progressing", "status": "False", "message": "timed out"}],
        },
    }
    view = observe_child(body)
    assert (view.spec_hash, view.replicas, view.settled, view.stalled) == (
        "h",
        2,
        False,
        "timed out",
    )


AUTOSCALED = {
    "autoscaling": {"minReplicas": 1, "maxReplicas": 4, "target": 8, "metric": "inFlight"}
}


def test_a_fixed_service_wants_its_replicas_or_one() -> None:
    assert scaling(make({"replicas": 3}), None, None)[0].desired == 3
    assert scaling(make(), None, None)[0].desired == 1


def test_an_autoscaled_service_resumes_its_decision_from_the_status() -> None:
    service = make(AUTOSCALED, desiredReplicas=3, autoscaling={
        "metric": "inFlight", "target": 8, "lastScaleTime": "2026-01-01T00:00:00Z"
    })  # fmt: skip
    wanted, last_scale = scaling(service, None, None)
    assert wanted.desired == 3
    assert wanted.status is not None and wanted.status.last_scale_time == last_scale
    assert last_scale is not None and last_scale.year == 2026


def test_a_resumed_decision_is_clamped_to_the_current_bounds() -> None:
    assert scaling(make(AUTOSCALED, desiredReplicas=9), None, None)[0].desired == 4


def test_the_autoscalers_decision_wins_over_the_status_once_made() -> None:
    decision = ScaleDecision(2, 8.0, 2, why="in flight 8 per replica")
    wanted, last_scale = scaling(make(AUTOSCALED, desiredReplicas=3), decision, NOW)
    assert (wanted.desired, wanted.why, last_scale) == (2, "in flight 8 per replica", NOW)
    assert wanted.status is not None and wanted.status.current == 8.0
