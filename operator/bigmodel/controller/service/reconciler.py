"""One BigModelService's I/O, used by the service controller: observe, decide, apply; and
once per telemetry interval, a telemetry round whose measurement feeds the autoscaler."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import kopf

from bigmodel.api import (
    SERVICE_CONDITIONS,
    SERVICE_KIND,
    BigModelService,
    BigModelServiceStatus,
    InvalidResourceError,
    Reason,
    parse_resource,
)
from bigmodel.controller.conditions import owned_status, with_observed
from bigmodel.controller.k8s import ApiError, Kube
from bigmodel.controller.service.autoscaler import (
    Recommendation,
    ScaleDecision,
    load_of,
    next_decision,
)
from bigmodel.controller.service.decisions import Plan, Scaling, Seen, decide
from bigmodel.controller.service.decisions import scaling as decide_scaling
from bigmodel.controller.service.replicas import replica_targets
from bigmodel.controller.telemetry import TelemetryRounds
from bigmodel.manifests.service import RuntimeImages
from bigmodel.telemetry.export import OperatorMetrics, ServiceScale
from bigmodel.telemetry.serving import reading_of

FIELD_MANAGER = "bigmodel-service-controller"


class ServiceReconciler:
    """One service's I/O: remembers its own writes until watched, and the autoscaler's
    recent recommendations."""

    def __init__(
        self,
        kube: Kube,
        body: kopf.Body,
        logger: logging.Logger | logging.LoggerAdapter[Any],
        images: RuntimeImages,
        metrics: OperatorMetrics,
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
        """The replica count to have now (see `decisions.scaling`)."""
        scaling, self.last_scale = decide_scaling(service, self.decision, self.last_scale)
        return scaling

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
        decision, self.last_scale = next_decision(
            rules, desired, load, self.history, self.started, datetime.now(UTC), self.last_scale
        )
        self.history, self.decision = decision.history, decision

    def _export(self, service: BigModelService, status: BigModelServiceStatus) -> None:
        meta = self.body["metadata"]
        auto = status.autoscaling
        self.metrics.set_phase(
            meta["namespace"],
            SERVICE_KIND,
            meta["name"],
            status.phase.value if status.phase else None,
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
