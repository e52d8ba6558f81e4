"""What the service reconciler decides without I/O: the replica count it wants (resumed
from the status after an operator restart), its children's targets and the load it reads."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry

from bigmodel.api import BigModelService, Condition, ConditionStatus, parse_resource
from bigmodel.controller.service.reconciler import ServiceReconciler, load_of, replica_targets
from bigmodel.controller.service.replicas import ReplicaPod
from bigmodel.manifests.service import RuntimeImages
from bigmodel.telemetry.aggregate import summarize
from bigmodel.telemetry.export import OperatorMetrics
from bigmodel.telemetry.observe import Observation, TelemetryState
from bigmodel.telemetry.serving import TokenRound

AUTOSCALED = {
    "autoscaling": {"minReplicas": 1, "maxReplicas": 4, "target": 8, "metric": "inFlight"}
}


def body(spec: dict[str, Any], **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "bigmodel.dev/v1alpha1",
        "kind": "BigModelService",
        "metadata": {"name": "chat", "namespace": "ml", "uid": "u", "generation": 1},
        "spec": {"model": {"name": "m", "uri": "/m"}, **spec},
        "status": status,
    }


def reconciler(resource: dict[str, Any]) -> ServiceReconciler:
    metrics = OperatorMetrics(CollectorRegistry())
    logger = logging.getLogger("test")
    return ServiceReconciler(None, resource, logger, RuntimeImages(), metrics, None)  # type: ignore[arg-type]


def parsed(resource: dict[str, Any]) -> BigModelService:
    return parse_resource(BigModelService, resource)


def test_a_fixed_service_wants_its_replicas_or_one() -> None:
    assert reconciler(body({"replicas": 3})).scaling(parsed(body({"replicas": 3}))).desired == 3
    assert reconciler(body({})).scaling(parsed(body({}))).desired == 1


def test_an_autoscaled_service_resumes_its_decision_from_the_status() -> None:
    resource = body(AUTOSCALED, desiredReplicas=3, autoscaling={
        "metric": "inFlight", "target": 8, "lastScaleTime": "2026-01-01T00:00:00Z"
    })  # fmt: skip
    scaling = reconciler(resource).scaling(parsed(resource))
    assert scaling.desired == 3
    assert scaling.status is not None and scaling.status.last_scale_time is not None


def test_a_resumed_decision_is_clamped_to_the_current_bounds() -> None:
    resource = body(AUTOSCALED, desiredReplicas=9)
    assert reconciler(resource).scaling(parsed(resource)).desired == 4


def test_targets_are_running_replicas_with_an_address() -> None:
    pods = [
        ReplicaPod("a", "1", "Running", "h", ready=True, ip="10.0.0.1"),
        ReplicaPod("b", "2", "Running", "h", ready=False, ip="10.0.0.2"),
        ReplicaPod("c", "3", "Pending", "h"),
        ReplicaPod("d", "4", "Running", "h", ready=True, ip="10.0.0.4", deleting=True),
    ]
    assert [(t.key, t.url) for t in replica_targets(pods, 8000)] == [
        ("a", "http://10.0.0.1:8000/metrics"),
        ("b", "http://10.0.0.2:8000/metrics"),
    ]
    assert load_of(None, pods, parsed(body({}))).ready == 1


def test_the_load_has_the_token_latency_of_the_ready_replicas_only() -> None:
    pods = [
        ReplicaPod("a", "1", "Running", "h", ready=True, ip="10.0.0.1"),
        ReplicaPod("b", "2", "Running", "h", ready=False, ip="10.0.0.2"),
    ]
    condition = Condition(
        type="StragglerDetected",
        status=ConditionStatus.FALSE,
        reason="NoStragglers",
        last_transition_time=datetime.now(UTC),
    )
    tokens = TokenRound(90, {"a": 0.2, "b": 0.9}, {"b": 0.05})
    obs = Observation(TelemetryState(), summarize({}), {}, {}, condition, (), tokens)
    load = load_of(obs, pods, parsed(body({})))
    assert (list(load.ttft), list(load.tpot), load.ready) == ([0.2], [], 1)
