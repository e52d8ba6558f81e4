"""Examples are accepted and every file in tests/invalid/ is rejected, naming its field.

Each invalid file starts with `# expect: <field> <cause type>`; `# update-of: <path>` makes it
an update of that (valid) object, for the transition rules."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from bigmodel.api import BigModelJob, BigModelService, parse_resource
from bigmodel.api.crds import crds
from kubesandbox.apiserver.crdschema import CRDSchema, FieldError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
INVALID = sorted((ROOT / "tests" / "invalid").glob("*.yaml"))
SCHEMAS = {
    crd["spec"]["names"]["kind"]: CRDSchema(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
    for crd in crds()
}
MODELS: dict[str, type[BigModelJob | BigModelService]] = {
    "BigModelJob": BigModelJob,
    "BigModelService": BigModelService,
}


def admit(obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[FieldError]:
    """Errors of a create (or an update of `old`), after pruning and defaulting as the
    API server does."""
    schema = SCHEMAS[obj["kind"]]
    return schema.validate(schema.default(schema.prune(obj)), old and schema.default(old))


def load(path: Path) -> dict[str, Any]:
    """The BigModelJob or BigModelService of a file (examples may hold other objects too)."""
    [obj] = [d for d in yaml.safe_load_all(path.read_text()) if d and d["kind"] in MODELS]
    return obj


def others(path: Path) -> list[dict[str, Any]]:
    """The built-in objects beside it (a PersistentVolumeClaim, ...)."""
    return [d for d in yaml.safe_load_all(path.read_text()) if d and d["kind"] not in MODELS]


def header(path: Path, key: str) -> str | None:
    match = re.search(rf"^# {key}: (.+)$", path.read_text(), re.MULTILINE)
    return match.group(1).strip() if match else None


def test_there_are_examples_of_both_kinds() -> None:
    assert {load(p)["kind"] for p in EXAMPLES} == set(MODELS)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_is_accepted_by_the_crd_schema(path: Path) -> None:
    obj = load(path)
    assert SCHEMAS[obj["kind"]].unknown_fields(obj) == []
    assert admit(obj) == []


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_the_other_objects_of_an_example_are_valid_kubernetes_objects(path: Path) -> None:
    for obj in others(path):
        kubernetes_validate.validate(obj, "1.33", strict=True)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_parses_as_a_model(path: Path) -> None:
    obj = load(path)
    assert parse_resource(MODELS[obj["kind"]], obj).metadata["name"] == obj["metadata"]["name"]


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_resource_is_rejected_naming_the_field(path: Path) -> None:
    expect = header(path, "expect")
    assert expect, f"{path.name} has no '# expect: <field> <type>' line"
    field, cause = expect.split()
    update_of = header(path, "update-of")
    old = load(ROOT / update_of) if update_of else None
    errors = admit(load(path), old)
    assert (field, cause) in {(e.field, e.type) for e in errors}, [str(e) for e in errors]


@pytest.mark.parametrize(
    ("example", "change"),
    [
        ("cpu-job.yaml", {"runPolicy": {"suspend": True}}),
        ("cpu-job.yaml", {"env": [{"name": "LR", "value": "0.1"}]}),
        ("gpu-job-elastic.yaml", {"nodes": 6}),
        ("service.yaml", {"image": "vllm/vllm-openai:v0.9.0"}),
    ],
)
def test_mutable_fields_can_change_on_update(example: str, change: dict[str, Any]) -> None:
    old = load(ROOT / "examples" / example)
    new = {**old, "spec": {**old["spec"], **change}}
    assert admit(new, old) == []
