"""The pydantic models: defaults agree with the CRD schema, bodies parse, errors name fields."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel

from bigmodel.api import (
    BigModelJob,
    BigModelService,
    Condition,
    ConditionStatus,
    InvalidResourceError,
    JobPhase,
    parse_resource,
)
from bigmodel.api.crds import crds
from kubesandbox.apiserver.crdschema import CRDSchema

SCHEMAS = {
    crd["spec"]["names"]["kind"]: CRDSchema(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
    for crd in crds()
}
MINIMAL: dict[str, tuple[type[BaseModel], dict[str, Any]]] = {
    "BigModelJob": (BigModelJob, {"image": "trainer:1", "command": ["python", "train.py"]}),
    "BigModelService": (BigModelService, {"model": {"name": "m"}}),
}


def without_empty(value: Any) -> Any:
    """`value` without empty lists and maps: the model's way of saying "absent"."""
    if isinstance(value, dict):
        items = {k: without_empty(v) for k, v in value.items()}
        return {k: v for k, v in items.items() if v not in ({}, [])}
    if isinstance(value, list):
        return [without_empty(v) for v in value]
    return value


def body(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "bigmodel.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": "x"},
        "spec": spec,
    }


@pytest.mark.parametrize("kind", sorted(MINIMAL))
@pytest.mark.parametrize("part", ["spec", "status"])
def test_schema_defaults_equal_model_defaults(kind: str, part: str) -> None:
    model, spec = MINIMAL[kind]
    obj = {**body(kind, spec), "status": {}}
    from_schema = SCHEMAS[kind].default(obj)[part]
    from_model = model.model_validate(obj).model_dump(mode="json", exclude_none=True)[part]
    assert without_empty(from_model) == from_schema


def test_procs_per_node_defaults_to_one_per_gpu() -> None:
    spec = {**MINIMAL["BigModelJob"][1], "gpusPerNode": 8}
    assert parse_resource(BigModelJob, body("BigModelJob", spec)).spec.effective_procs_per_node == 8


def test_procs_per_node_defaults_to_one_without_gpus() -> None:
    job = parse_resource(BigModelJob, body("BigModelJob", MINIMAL["BigModelJob"][1]))
    assert job.spec.effective_procs_per_node == 1


def test_fields_are_populated_by_python_name_and_dumped_in_camel_case() -> None:
    job = BigModelJob.model_validate(body("BigModelJob", MINIMAL["BigModelJob"][1]))
    job.spec.run_policy.backoff_limit = 7
    assert job.model_dump(mode="json")["spec"]["runPolicy"]["backoffLimit"] == 7


def test_status_round_trips_through_json() -> None:
    condition = Condition(
        type="Running",
        status=ConditionStatus.TRUE,
        reason="AllNodesRunning",
        last_transition_time=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    job = BigModelJob.model_validate(body("BigModelJob", MINIMAL["BigModelJob"][1]))
    job.status.phase = JobPhase.RUNNING
    job.status.conditions.append(condition)
    dumped = job.model_dump(mode="json", exclude_none=True)
    assert dumped["status"]["conditions"][0]["lastTransitionTime"] == "2025-01-02T03:04:05Z"
    assert SCHEMAS["BigModelJob"].validate(dumped) == []
    assert BigModelJob.model_validate(dumped) == job


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"nodes": 0}, "spec.nodes: must be >= 1"),
        ({"command": []}, "spec.command: must have at least 1 items"),
        ({"image": None}, "spec.image: Input should be a valid string"),
        ({"env": [{"value": "1"}]}, "spec.env[0].name: required"),
        ({"shmSize": "1 GB"}, "spec.shmSize: must be a quantity like 500m, 2Gi or 4"),
        (
            {"runPolicy": {"restartPolicy": "Always"}},
            "spec.runPolicy.restartPolicy: must be one of 'OnFailure', 'ExitCode' or 'Never'",
        ),
    ],
)
def test_invalid_body_error_names_the_field(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidResourceError) as caught:
        parse_resource(BigModelJob, body("BigModelJob", {**MINIMAL["BigModelJob"][1], **spec}))
    assert caught.value.errors == [message]


def autoscaled(**autoscaling: Any) -> dict[str, Any]:
    rules = {"maxReplicas": 4, "metric": "ttft", "target": 0.5, **autoscaling}
    return body("BigModelService", {"model": {"name": "m", "uri": "/m"}, "autoscaling": rules})


def test_ttft_and_tpot_are_read_at_p90_unless_a_percentile_is_given() -> None:
    service = parse_resource(BigModelService, autoscaled(metric="tpot"))
    assert service.spec.autoscaling is not None
    assert service.spec.autoscaling.effective_percentile == 90
    service = parse_resource(BigModelService, autoscaled(percentile=99.5))
    assert service.spec.autoscaling is not None
    assert service.spec.autoscaling.effective_percentile == 99.5


def test_missing_spec_is_reported_as_required() -> None:
    with pytest.raises(InvalidResourceError) as caught:
        parse_resource(BigModelService, {"metadata": {"name": "x"}})
    assert caught.value.errors == ["spec: required"]
