"""One BigModelService's I/O, used by the service controller: observe, decide, apply; and
once per telemetry interval, a telemetry round whose measurement feeds the autoscaler."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import kopf

from bigmodel.api import (
    SERVICE_CONDITIONS,
    BigModelService,
    BigModelServiceStatus,
    InvalidResourceError,
    Reason,
    parse_resource,
)
from bigmodel.api.service import AutoscalingStatus
from bigmodel.controller.conditions import owned_status, with_observed
from bigmodel.controller.k8s import ApiError, Kube
from bigmodel.controller.service.autoscaler import (
    Load,
    Recommendation,
    ScaleDecision,
    autoscale,
)
from bigmodel.controller.service.decisions import Plan, Scaling, Seen, decide
from bigmodel.controller.service.replicas import ReplicaPod
from bigmodel.controller.telemetry import TelemetryRounds
from bigmodel.manifests.service import RuntimeImages
from bigmodel.telemetry.collect import MissingReason, Target, pod_url
from bigmodel.telemetry.export import SERVICE, ServiceScale, TelemetryMetrics
from bigmodel.telemetry.observe import Observation
from bigmodel.telemetry.serving import reading_of

FIELD_MANAGER = "bigmodel-service-controller"


def replica_targets(pods: Sequence[ReplicaPod], port: int) -> list[Target]:
    """One target per running replica with an address (ready or still loading)."""
    live = [p for p in pods if p.phase == "Running" and not p.deleting and p.ip]
    return [Target(p.name, p.name, pod_url(p.ip or "", port)) for p in sorted(live, key=_name)]


def _name(pod: ReplicaPod) -> str:
    return pod.name


def load_of(obs: Observation | None, pods: Sequence[ReplicaPod], service: BigModelService) -> Load:
    """What a telemetry round measured of the ready replicas."""
    ready = {p.name for p in pods if p.ready and not p.deleting}
    if obs is None:
        return Load(ready=len(ready))
    reading = reading_of(service.spec.runtime)
    scrapes = [s for key, s in obs.scrapes.items() if key in ready]
    valid = obs.summary.relative_speed
    flights = [reading.in_flight(s) for s in scrapes if s.reason is None or s.raw]
    tokens = obs.tokens
    return Load(
        task_seconds=[s.value for s in scrapes if s.value is not None and s.target.key in valid],
        idle=sum(1 for s in scrapes if s.reason is MissingReason.IDLE),
        in_flight=[f for f in flights if f is not None],
        ready=len(ready),
        ttft=[v for key, v in tokens.ttft.items() if key in ready] if tokens else (),
        tpot=[v for key, v in tokens.tpot.items() if key in ready] if tokens else (),
    )


class ServiceReconciler:
    """One service's I/O: remembers its own writes until watched, and the autoscaler's
    recent recommendations."""

    def __init__(
        self,
        kube: Kube,
        body: kopf.Body,
        logger: logging.Logger | logging.LoggerAdapter[Any],
        images: RuntimeImages,
        metrics: TelemetryMetrics,
        rounds: TelemetryRounds,
    ) -> None:
        self.kube, self.body, self.logger, self.images = kube, body, logger, images
        self.metrics, self.rounds = metrics, rounds
        self.status: BigModelServiceStatus | None = None
        """The status last written: newer than the body's until the watch delivers it."""
        self.problems: list[str] = []
        """Children the API refused as invalid (for the generation `refused`)."""
        self.refused: int | None = None
        self.invalid_body = False
        self.started = datetime.now(UTC)
        self.history: tuple[Recommendation, ...] = ()
        self.decision: ScaleDecision | None = None
        """The autoscaler's latest decision (autoscaled services)."""
        self.last_scale: datetime | None = None
        """When the autoscaler last changed the desired replicas (resumed from status)."""
        self.in_flight: float | None = None

    def parse(self) -> BigModelService | None:
        """The service, with the status this controller last wrote; None (reported once) when
        the body does not parse."""
        try:
            service = parse_resource(BigModelService, self.body)
        except InvalidResourceError as exc:
            if not self.invalid_body:
                self.invalid_body = True
                self.logger.error("invalid service: %s", exc)
                kopf.event(
                    self.body, type="Warning", reason=Reason.INVALID, message=str(exc)[:1024]
                )
            return None
        if self.status is not None:
            service.status = with_observed(self.status, service.status, SERVICE_CONDITIONS)
        return service

    def scaling(self, service: BigModelService) -> Scaling:
        """The replica count to have now: spec.replicas, or the autoscaler's decision
        (resumed from the status after an operator restart)."""
        rules = service.spec.autoscaling
        if rules is None:
            replicas = 1 if service.spec.replicas is None else service.spec.replicas
            return Scaling(replicas)
        decision = self.decision
        if decision is None:
            resumed = service.status.desired_replicas or rules.min_replicas
            desired = min(max(resumed, rules.min_replicas), rules.max_replicas)
            decision = ScaleDecision(desired, None, None)
            if service.status.autoscaling is not None:
                self.last_scale = service.status.autoscaling.last_scale_time
        status = AutoscalingStatus(
            metric=rules.metric,
            percentile=rules.effective_percentile,
            current=decision.value,
            target=rules.target,
            recommended_replicas=decision.recommended,
            last_scale_time=self.last_scale,
        )
        return Scaling(decision.desired, decision.why, status, decision.limited)

    async def step(self, seen: Seen) -> None:
        """One look at the service: decide and apply."""
        service = self.parse()
        if service is None:
            return
        if self.refused != service.metadata.get("generation"):
            self.problems, self.refused = [], None  # a new spec: try its children again
        plan = decide(
            service, seen, self.scaling(service), self.images, datetime.now(UTC), self.problems
        )
        await self._apply(service, plan)
        self._export(service, plan.status)

    async def measure(self, seen: Seen) -> None:
        """One telemetry round over the replicas; an autoscaled service's next decision."""
        service = self.parse()
        if service is None:
            return
        targets = replica_targets(seen.pods, service.spec.port)
        rules = service.spec.autoscaling
        reading = reading_of(service.spec.runtime, rules.effective_percentile if rules else None)
        obs = await self.rounds.safe_step(targets, service.spec.telemetry, reading, reading.tokens)
        load = load_of(obs, seen.pods, service)
        self.in_flight = sum(load.in_flight) / len(load.in_flight) if load.in_flight else None
        if rules is None:
            return
        desired = self.scaling(service).desired
        loading = max(0, desired - load.ready)
        now = datetime.now(UTC)
        decision = autoscale(rules, desired, load, loading, self.history, self.started, now)
        if decision.desired != desired:
            self.last_scale = now
        self.history, self.decision = decision.history, decision

    def _export(self, service: BigModelService, status: BigModelServiceStatus) -> None:
        meta = self.body["metadata"]
        auto = status.autoscaling
        self.metrics.set_phase(
            meta["namespace"], SERVICE, meta["name"], status.phase.value if status.phase else None
        )
        self.metrics.record_scale(
            ServiceScale(
                meta["namespace"],
                meta["name"],
                status.desired_replicas or 0,
                status.ready_replicas,
                self.in_flight,
                auto.metric.value if auto else None,
                auto.current if auto else None,
                auto.target if auto else None,
            )
        )

    async def _apply(self, service: BigModelService, plan: Plan) -> None:
        """Apply the children, then write the status and post the events."""
        for child in (plan.front, plan.deployment):
            if child is not None:
                await self._apply_child(child)
        new = owned_status(plan.status, SERVICE_CONDITIONS)
        if new != owned_status(service.status, SERVICE_CONDITIONS):
            await self.kube.apply_status(self.body, new, FIELD_MANAGER)
        self.status = plan.status
        for event in plan.events:
            kopf.event(self.body, type=event.type, reason=event.reason, message=event.message)
        for pod in plan.delete:
            meta = {"name": pod.name, "namespace": self.body["metadata"]["namespace"]}
            await self.kube.delete({"apiVersion": "v1", "kind": "Pod", "metadata": meta}, pod.uid)

    async def _apply_child(self, child: dict[str, Any]) -> None:
        # append_owner_reference, not adopt: adopt would also copy every label of the
        # service, including kopf's and kubectl's, which the builders filter out.
        kopf.append_owner_reference(child, owner=self.body)
        try:
            await self.kube.apply(child, FIELD_MANAGER)
        except ApiError as exc:
            if exc.status not in (400, 422):
                raise
            problem = f"{child['kind']} {child['metadata']['name']}: {exc.message}"
            if problem not in self.problems:
                self.problems.append(problem)
            self.refused = self.body["metadata"].get("generation")
