"""`stragglerPolicy: Replace` for services: a replica whose request time stands out is deleted
and the Deployment's template prefers other machines, within each guard rail."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bigmodel.api import BigModelService, Reason, parse_resource
from bigmodel.api.telemetry import StragglerCause
from bigmodel.controller.service.decisions import Plan, Scaling, Seen, decide
from bigmodel.controller.service.replicas import ChildView, ReplicaPod, observe_replica
from bigmodel.manifests.service import SPEC_HASH, TEMPLATE_HASH, RuntimeImages, build_deployment

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
IMAGES = RuntimeImages()
REPLACE = {"action": "Replace", "after": 2, "maxReplacements": 1}
PREFERRED = "preferredDuringSchedulingIgnoredDuringExecution"


def ago(seconds: float) -> str:
    return (NOW - timedelta(seconds=seconds)).isoformat()


def straggling(
    policy: dict[str, Any] | None = None, spec: dict[str, Any] | None = None, **status: Any
) -> BigModelService:
    """A 3-replica service whose replica chat-2 has been flagged for 100 s (windows of 10 s)."""
    telemetry = {
        "n": 3,
        "serviceQuality": 4.0,
        "stragglers": ["chat-2"],
        "stragglerDetails": [{"name": "chat-2", "since": ago(100), "excessSeconds": 0.2}],
        "updatedAt": ago(1),
    }
    body = {
        "metadata": {"name": "chat", "namespace": "ml", "uid": "u", "generation": 2},
        "spec": {
            "model": {"name": "tiny", "uri": "/m"},
            "replicas": 3,
            "telemetry": {"windowSeconds": 10, "stragglerPolicy": policy or REPLACE},
            **(spec or {}),
        },
        "status": {"telemetry": telemetry, **status},
    }
    return parse_resource(BigModelService, body)


def settled(service: BigModelService, ready: int = 3, replicas: int = 3) -> Seen:
    """Its Deployment rolled out, `replicas` pods of the current template, `ready` ready."""
    deployment = build_deployment(service, 3, IMAGES)
    template = deployment["spec"]["template"]["metadata"]["annotations"][TEMPLATE_HASH]
    view = ChildView(
        "Deployment",
        "chat",
        deployment["metadata"]["annotations"][SPEC_HASH],
        replicas=3,
        generation=1,
        observed_generation=1,
        updated_replicas=3,
        ready_replicas=ready,
    )
    pods = [
        ReplicaPod(
            name=f"chat-{i}", uid=f"u{i}", phase="Running", template=template, ready=i < ready,
            ip=f"10.0.0.{i}", machine=f"machine-{i}", created=NOW - timedelta(seconds=1000),
        )
        for i in range(replicas)
    ]  # fmt: skip
    return Seen(view, None, pods)


def run(service: BigModelService, seen: Seen, desired: int = 3) -> Plan:
    return decide(service, seen, Scaling(desired), IMAGES, NOW)


def test_a_straggling_replica_is_deleted_and_the_template_prefers_other_machines() -> None:
    service = straggling()
    plan = run(service, settled(service))
    assert [p.name for p in plan.delete] == ["chat-2"]
    [event] = [e for e in plan.events if e.reason == Reason.STRAGGLER_REPLACED]
    assert event.message.startswith("chat-2 moved off machine machine-2 (cause Unknown)")
    assert plan.deployment is not None  # applied again: its template changed
    affinity = plan.deployment["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]
    assert affinity[PREFERRED] == [
        {
            "weight": 100,
            "preference": {
                "matchExpressions": [
                    {"key": "kubernetes.io/hostname", "operator": "NotIn", "values": ["machine-2"]}
                ]
            },
        }
    ]
    [record] = plan.status.straggler_replacements
    assert (record.pod, record.machine, record.service_quality_before) == (
        "chat-2",
        "machine-2",
        4.0,
    )


@pytest.mark.parametrize(
    ("case", "service", "ready", "replicas"),
    [
        ("policy None", straggling({"action": "None"}), 3, 3),
        ("not settled: a replica not ready", straggling(), 2, 3),
        ("not settled: a replica missing", straggling(), 3, 2),
        ("maxReplacements 0", straggling({**REPLACE, "maxReplacements": 0}), 3, 3),
        ("flagged too briefly", straggling({**REPLACE, "after": 11}), 3, 3),
    ],
)
def test_no_replacement_when_a_guard_rail_holds(
    case: str, service: BigModelService, ready: int, replicas: int
) -> None:
    plan = run(service, settled(service, ready, replicas))
    assert plan.delete == [], case
    assert plan.status.straggler_replacements == [], case


def test_never_below_the_minimum_of_ready_replicas() -> None:
    autoscaled = {
        "replicas": None,
        "autoscaling": {"minReplicas": 3, "maxReplicas": 5, "target": 1.0},
    }
    service = straggling(spec=autoscaled)
    assert run(service, settled(service)).delete == []  # 3 ready, min 3: none to spare
    single = straggling(spec={"replicas": 1})
    assert run(single, settled(single, 1, 1), desired=1).delete == []


def test_an_input_pipeline_straggler_stays() -> None:
    service = straggling()
    service.status.telemetry.straggler_details[0].cause = StragglerCause.INPUT_PIPELINE
    assert run(service, settled(service)).delete == []


def test_s_after_is_recorded_once_the_rollout_renewed_every_replica() -> None:
    record = {"pod": "chat-2", "machine": "machine-2", "replacedAt": ago(60),
              "serviceQualityBefore": 2.0}  # fmt: skip
    service = straggling(stragglerReplacements=[record])
    service.status.telemetry.stragglers, service.status.telemetry.straggler_details = [], []
    seen = settled(service)
    old = run(service, seen)  # pods older than the replacement: not measured yet
    assert old.status.straggler_replacements[0].service_quality_after is None
    renewed = [replace(p, created=NOW - timedelta(seconds=20)) for p in seen.pods]
    plan = run(service, Seen(seen.deployment, None, renewed))
    assert plan.status.straggler_replacements[0].service_quality_after == 4.0
    assert [e.message for e in plan.events if e.reason == Reason.REPLACEMENT_MEASURED] == [
        "S after moving chat-2 off machine machine-2: 4/s, before 2/s (x2.00)"
    ]


def test_a_replica_body_tells_its_machine_and_creation_time() -> None:
    body = {
        "metadata": {"name": "chat-1", "uid": "u", "creationTimestamp": "2026-01-01T11:59:00Z"},
        "spec": {"nodeName": "machine-1"},
        "status": {"phase": "Running"},
    }
    pod = observe_replica(body)
    assert (pod.machine, pod.created) == ("machine-1", NOW - timedelta(seconds=60))


def test_a_replica_created_in_the_second_of_the_replacement_is_a_new_one() -> None:
    # creationTimestamp has whole seconds: the rollout's first pod often shows the very
    # second the replacement was recorded in, a fraction of a second "before" it.
    service = straggling()
    half_past = NOW + timedelta(milliseconds=500)
    first = decide(service, settled(service), Scaling(3), IMAGES, half_past)
    [record] = first.status.straggler_replacements
    assert record.replaced_at == NOW
    service.status = first.status
    telemetry = service.status.telemetry
    telemetry.stragglers, telemetry.straggler_details = [], []
    later = NOW + timedelta(seconds=15)
    telemetry.updated_at = later
    seen = settled(service)
    same_second = [replace(p, created=NOW) for p in seen.pods]
    plan = decide(service, Seen(seen.deployment, None, same_second), Scaling(3), IMAGES, later)
    assert plan.status.straggler_replacements[0].service_quality_after == 4.0
