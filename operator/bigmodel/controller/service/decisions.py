"""The BigModelService lifecycle as one pure function: `decide(service, seen, ...) -> Plan`.

The daemon of each service calls it with what it observes (its Deployment, its Service and
the replica pods) and the replica count it wants (spec.replicas, or the autoscaler's
decision), and applies the plan: the children to apply, the status, the events.

- Phases: Pending (no replica started yet), Progressing (rolling out or scaling), Ready
  (every desired replica runs the current spec and is ready), Failed (the spec is invalid,
  every replica of the current spec failed to load the model, or the rollout passed its
  progress deadline). Failed is not final: a fixed spec rolls out and becomes Ready.
- A straggling replica is moved off its machine under `spec.telemetry.stragglerPolicy`
  (`replacement`).
- The children are applied again only when what the spec builds differs from what they
  carry (a hash of the manifest) or the replica count differs: changing the count never
  touches the pod template, so it never restarts a replica.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bigmodel.api import BigModelService, BigModelServiceStatus, ConditionType, PodPhase, Reason
from bigmodel.api.service import AutoscalingStatus, ServicePhase
from bigmodel.controller.conditions import Event, StatusStep, transitions
from bigmodel.controller.kstatus import service_kstatus
from bigmodel.controller.podstatus import quote_pods
from bigmodel.controller.service.autoscaler import ScaleDecision
from bigmodel.controller.service.replacement import act_on_stragglers
from bigmodel.controller.service.replicas import ChildView, ReplicaPod
from bigmodel.manifests.service import (
    SPEC_HASH,
    TEMPLATE_HASH,
    RuntimeImages,
    build_deployment,
    build_service,
    selector_string,
    spec_errors,
    url,
)

WARNING_REASONS = frozenset(
    {Reason.INVALID, Reason.MODEL_LOAD_FAILED, Reason.PROGRESS_DEADLINE_EXCEEDED}
)
EVENTED = (ConditionType.PROGRESSING, ConditionType.MODEL_LOADED, ConditionType.SCALING_LIMITED)
"""Conditions whose changes are events: the rollout's progress (Creating, Scaling,
RollingOut, RolloutComplete, failures), the model loaded or not, the autoscaler's bounds.
Ready and Available say the same things again."""
QUIET_WHEN_FALSE = (ConditionType.SCALING_LIMITED,)


@dataclass(frozen=True)
class Seen:
    """What the controller observes of a service's children."""

    deployment: ChildView | None = None
    front: ChildView | None = None
    """The ClusterIP Service."""
    pods: Sequence[ReplicaPod] = ()


@dataclass(frozen=True)
class Scaling:
    """The replica count the service wants now, and why it changed (for the event)."""

    desired: int
    why: str = "spec.replicas"
    status: AutoscalingStatus | None = None
    """The autoscaler's latest measurement (autoscaled services only)."""
    limited: Reason | None = None
    """TooFewReplicas or TooManyReplicas when the autoscaler hit a bound."""


@dataclass
class Plan:
    """What to do now: the status to write, children to apply, events to post."""

    status: BigModelServiceStatus
    deployment: dict[str, Any] | None = None
    front: dict[str, Any] | None = None
    events: list[Event] = field(default_factory=list)
    delete: list[ReplicaPod] = field(default_factory=list)
    """Replica pods to delete (a straggler moved off its machine), after the children."""


class _Step(StatusStep[BigModelServiceStatus]):
    """The plan under construction for one look at a service."""

    def __init__(self, service: BigModelService, now: datetime) -> None:
        super().__init__(service.status, service.metadata.get("generation"), now)
        self.service = service
        self.plan = Plan(status=self.status)


def scaling(
    service: BigModelService, decision: ScaleDecision | None, last_scale: datetime | None
) -> tuple[Scaling, datetime | None]:
    """The replica count to have now: spec.replicas (1 when unset), or the autoscaler's
    latest decision; before its first one (a new controller, e.g. after an operator
    restart), the desired replicas resumed from the status within the current bounds. Also
    when the desired replicas last changed (resumed from the status with the decision)."""
    rules = service.spec.autoscaling
    if rules is None:
        return Scaling(1 if service.spec.replicas is None else service.spec.replicas), last_scale
    if decision is None:
        resumed = service.status.desired_replicas or rules.min_replicas
        decision = ScaleDecision(
            min(max(resumed, rules.min_replicas), rules.max_replicas), None, None
        )
        if service.status.autoscaling is not None:
            last_scale = service.status.autoscaling.last_scale_time
    status = AutoscalingStatus(
        metric=rules.metric,
        percentile=rules.effective_percentile,
        current=decision.value,
        target=rules.target,
        recommended_replicas=decision.recommended,
        last_scale_time=last_scale,
    )
    return Scaling(decision.desired, decision.why, status, decision.limited), last_scale


def _outdated(child: ChildView | None, manifest: dict[str, Any], replicas: int | None) -> bool:
    """Whether `child` must be applied from `manifest` (absent, built differently, or with
    another replica count)."""
    if child is None:
        return True
    built = manifest["metadata"]["annotations"][SPEC_HASH]
    return child.spec_hash != built or (replicas is not None and child.replicas != replicas)


def _template_hash(deployment: dict[str, Any]) -> str:
    return str(deployment["spec"]["template"]["metadata"]["annotations"][TEMPLATE_HASH])


def _waiting_for(pods: Sequence[ReplicaPod]) -> str:
    """`; chat-5d9c: 0/2 nodes are available: ...` for pods the scheduler cannot place."""
    stuck = [(p.name, p.unschedulable) for p in pods if p.unschedulable]
    return f"; unschedulable: {quote_pods(stuck)}" if stuck else ""


def _load_failure(current: Sequence[ReplicaPod]) -> str:
    """The message of a failed model load, quoting the first replica's own reason."""
    first = next((p for p in current if p.message), current[0])
    reason = first.message or f"exit code {first.exit_code}"
    return (
        f"{len(current)} of {len(current)} replicas of the current spec failed to start"
        f" the server: {first.name}: {reason}"
    )


def _fail(step: _Step, reason: Reason, message: str) -> None:
    step.status.phase = ServicePhase.FAILED
    step.condition(ConditionType.READY, False, reason, message)
    step.condition(ConditionType.PROGRESSING, False, reason, message)


def _invalid(step: _Step, errors: Sequence[str]) -> None:
    """A spec the operator cannot build: Failed, and the children keep the last good spec."""
    _fail(step, Reason.INVALID, "; ".join(errors))


def _lifecycle(step: _Step, seen: Seen, desired: int, template: str) -> None:
    """Phase and conditions from the replicas of the current spec."""
    status, deployment = step.status, seen.deployment
    pods = [p for p in seen.pods if not p.deleting]
    current = [p for p in pods if p.template == template]
    ready = [p for p in pods if p.ready]
    loaded = [p for p in current if p.ready]
    status.replicas, status.updated_replicas = len(pods), len(current)
    status.ready_replicas = len(ready)
    waiting = _waiting_for(current)
    count = f"{len(loaded)} of {desired} replicas of generation {step.generation} ready"
    if len(pods) > desired:
        count = f"{len(pods)} replicas, scaling down to {desired}"
    if ready or desired == 0:
        step.condition(
            ConditionType.AVAILABLE, True, Reason.REPLICAS_AVAILABLE, f"{len(ready)} ready"
        )
    else:
        step.condition(ConditionType.AVAILABLE, False, Reason.NO_REPLICAS_AVAILABLE, "0 ready")
    failed = bool(current) and not loaded and all(p.crashed for p in current)
    if failed:
        message = _load_failure(current)
        _fail(step, Reason.MODEL_LOAD_FAILED, message)
        step.condition(ConditionType.MODEL_LOADED, False, Reason.MODEL_LOAD_FAILED, message)
        return
    if loaded:
        name = step.service.spec.model.name if step.service.spec.model else "the server"
        message = f"{name} loaded by {len(loaded)} replicas"
        step.condition(ConditionType.MODEL_LOADED, True, Reason.MODEL_LOADED, message)
    elif desired == 0:
        step.condition(ConditionType.MODEL_LOADED, False, Reason.NO_REPLICAS, "0 replicas")
    else:
        step.condition(ConditionType.MODEL_LOADED, False, Reason.MODEL_LOADING, count + waiting)
    if deployment is not None and deployment.stalled:
        _fail(step, Reason.PROGRESS_DEADLINE_EXCEEDED, deployment.stalled + waiting)
        return
    settled = deployment is not None and deployment.settled and deployment.replicas == desired
    if settled and len(loaded) == desired and len(pods) == desired:
        status.phase = ServicePhase.READY
        step.condition(ConditionType.READY, True, Reason.REPLICAS_READY, count)
        step.condition(ConditionType.PROGRESSING, False, Reason.ROLLOUT_COMPLETE, count)
        return
    if len(current) < len(pods):
        reason = Reason.ROLLING_OUT  # replicas of an older spec remain
    elif ready:
        reason = Reason.SCALING
    else:
        reason = Reason.CREATING  # nothing served yet
    running = any(p.phase == PodPhase.RUNNING for p in pods)
    status.phase = ServicePhase.PROGRESSING if running else ServicePhase.PENDING
    step.condition(ConditionType.READY, False, reason, count + waiting)
    step.condition(ConditionType.PROGRESSING, True, reason, count + waiting)


def _autoscaling(step: _Step, scaling: Scaling) -> None:
    step.status.autoscaling = scaling.status
    if scaling.status is None:
        return
    if scaling.limited is None:
        step.condition(
            ConditionType.SCALING_LIMITED,
            False,
            Reason.DESIRED_WITHIN_RANGE,
            f"{scaling.desired} replicas",
        )
        return
    rules = step.service.spec.autoscaling
    assert rules is not None
    bound = (
        f"minReplicas {rules.min_replicas}"
        if scaling.limited is Reason.TOO_FEW_REPLICAS
        else f"maxReplicas {rules.max_replicas}"
    )
    wanted = scaling.status.recommended_replicas
    message = f"the metric asks for {wanted} replicas; held at {bound}"
    step.condition(ConditionType.SCALING_LIMITED, True, scaling.limited, message)


def _scale_event(before: int | None, scaling: Scaling) -> list[Event]:
    """`2 -> 3: in flight 11.5 per replica > target 8` when the desired count changed."""
    if before is None or before == scaling.desired:
        return []
    reason = Reason.SCALED_UP if scaling.desired > before else Reason.SCALED_DOWN
    return [Event("Normal", reason, f"{before} -> {scaling.desired}: {scaling.why}")]


def decide(
    service: BigModelService,
    seen: Seen,
    scaling: Scaling,
    images: RuntimeImages,
    now: datetime,
    problems: Sequence[str] = (),
) -> Plan:
    """The next step of a service given its children and the replica count it wants;
    `problems`: children the API refused as invalid."""
    step = _Step(service, now)
    status = step.status
    status.url, status.selector = url(service), selector_string(service)
    errors = [*spec_errors(service), *problems]
    if errors:
        _invalid(step, errors)
    else:
        deployment = build_deployment(service, scaling.desired, images)
        template = _template_hash(deployment)
        seen_now = (seen.deployment, seen.pods)
        moved = act_on_stragglers(service, status, seen_now, scaling.desired, template, now)
        step.plan.delete, step.plan.events = moved.delete, moved.events
        if moved.delete:  # the new template prefers other machines
            moving = service.model_copy(update={"status": status})
            deployment = build_deployment(moving, scaling.desired, images)
            template = _template_hash(deployment)
        front = build_service(service)
        if _outdated(seen.deployment, deployment, scaling.desired):
            step.plan.deployment = deployment
        if _outdated(seen.front, front, None):
            step.plan.front = front
        _lifecycle(step, seen, scaling.desired, template)
        _autoscaling(step, scaling)
    before = service.status.desired_replicas
    status.desired_replicas = scaling.desired
    changes = transitions(
        service.status.conditions,
        [c for c in status.conditions if c.type in EVENTED],
        lambda c: c.reason in WARNING_REASONS,
        QUIET_WHEN_FALSE,
    )
    unique = list(dict.fromkeys(changes))  # a failure both conditions report: one event
    step.plan.events = _scale_event(before, scaling) + unique + step.plan.events
    status.conditions = service_kstatus(status, step.generation, now)
    return step.plan
