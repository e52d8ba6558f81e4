"""Fuzzed BigModelJob and BigModelService specs, and what must hold for each one.

`resources(kind)` is a hypothesis strategy: a valid example (examples/) with one to three
fields, picked from the CRD's own schema, set to a value of their type (bounds and past
them, names and quantities right and wrong), of another type, or removed. `check(fuzzed)`
runs it through what the cluster and the operator do with it: CRD admission (the project's
schema, pruned and defaulted as the API server does), the models, the decisions and the
builders, and says how it ended:

- `refused`: the CRD refused it, each error naming its field;
- `invalid`: the operator ends it `Failed` with reason `Invalid`, the message naming a field
  (`suspended`: a suspended job that will, on resume);
- `child-refused`: a child built from a free-form field (volumes, affinity, the pod
  template: the CRD keeps them as they are) that the Kubernetes schema refuses: the API
  server answers 422 and the operator ends the resource `Failed`/`Invalid` with its message;
- `valid`: every child object validates against the Kubernetes 1.33 schema (strict).
Anything else (a crash, a child refused for a field the user did not write, an error
without a field) fails the check.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import kubernetes_validate
from hypothesis import strategies as st

from bigmodel.api import BigModelJob, BigModelService, JobPhase, Reason, parse_resource
from bigmodel.api.crds import crds
from bigmodel.controller.job.decisions import decide as decide_job
from bigmodel.controller.job.plan import Problem
from bigmodel.controller.job.timing import Timing
from bigmodel.controller.service.decisions import Scaling, Seen
from bigmodel.controller.service.decisions import decide as decide_service
from bigmodel.manifests.frameworks import contract_of
from bigmodel.manifests.job import build_pod, build_services
from bigmodel.manifests.job import spec_errors as job_spec_errors
from bigmodel.manifests.service import RuntimeImages, build_deployment
from bigmodel.manifests.service import build_service as build_front
from kubesandbox.apiserver.crdschema import CRDSchema
from support.examples import example

ROOT = Path(__file__).resolve().parents[2]
KUBE_VERSION = "1.33.0"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
FREE_FORM = "x-kubernetes-preserve-unknown-fields"
RAW = {
    crd["spec"]["names"]["kind"]: crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for crd in crds()
}
SCHEMAS = {kind: CRDSchema(schema) for kind, schema in RAW.items()}
BASES = {
    "BigModelJob": example("cpu-job.yaml", "BigModelJob"),
    "BigModelService": example("service.yaml", "BigModelService"),
}
Path_ = tuple[str, ...]


@dataclass(frozen=True)
class Field:
    """A field of the spec: its path (`[]` an item, `{}` a map value), schema and whether its
    value may hold a free-form part (one the CRD does not check)."""

    path: Path_
    schema: dict[str, Any]
    free_form: bool
    """At or in a free-form node."""
    holds_free_form: bool

    @property
    def key(self) -> str:
        """The path under `spec` without items and map values: `env.valueFrom`."""
        return ".".join(p for p in self.path[1:] if p not in ("[]", "{}"))


def _holds_free_form(schema: dict[str, Any]) -> bool:
    """Whether a value of `schema` can hold a free-form part."""
    children = [*(schema.get("properties") or {}).values()]
    children += [
        c for c in (schema.get("items"), schema.get("additionalProperties")) if isinstance(c, dict)
    ]
    return bool(schema.get(FREE_FORM)) or any(_holds_free_form(c) for c in children)


def _field(parent: Field | None, path: Path_, schema: dict[str, Any]) -> Field:
    free = (parent is not None and parent.free_form) or bool(schema.get(FREE_FORM))
    return Field(path, schema, free, free or _holds_free_form(schema))


def children(field: Field) -> dict[str, Field]:
    """The field's properties by name, its items as `[]`, its map values as `{}`."""
    schema = field.schema
    parts = dict(schema.get("properties") or {})
    for part, key in (("[]", "items"), ("{}", "additionalProperties")):
        if isinstance(schema.get(key), dict):
            parts[part] = schema[key]
    return {part: _field(field, (*field.path, part), child) for part, child in parts.items()}


def fields_of(field: Field) -> Iterator[Field]:
    """The field and every field under it, depth first."""
    yield field
    for child in children(field).values():
        yield from fields_of(child)


FIELDS = {
    kind: list(fields_of(_field(None, ("spec",), schema["properties"]["spec"])))
    for kind, schema in RAW.items()
}


# -- values -----------------------------------------------------------------------------------

SCALARS = st.none() | st.booleans() | st.integers() | st.text(max_size=12)


def _nested(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)


JSON = st.recursive(
    SCALARS | st.floats(allow_nan=False, allow_infinity=False), _nested, max_leaves=8
)
NAMES = st.sampled_from(
    ["a", "data", "x-1", "Bad_Name", "", "-x", "a" * 63, "a" * 64, "a.b", "ümlaut"]
)
QUANTITIES = st.sampled_from(["1", "500m", "2Gi", "0", "-1", "1e3", "1.5", "x", "", "10Ki", "3%"])
PATHS = st.sampled_from(["/data", "/", "relative", "/dev/shm", "/ckpt/x", "", "/a:b"])
MAP_KEYS = st.sampled_from(
    ["cpu", "memory", "nvidia.com/gpu", "example.com/x", "team", "", "a" * 70]
)
FREE_VALUES: dict[str, list[Any]] = {
    "env.valueFrom": [
        {"fieldRef": {"fieldPath": "metadata.name"}},
        {"secretKeyRef": {"name": "s", "key": "k"}},
    ],
    "envFrom": [{"configMapRef": {"name": "c"}}, {"secretRef": {"name": "s"}, "prefix": "P_"}],
    "volumes": [
        {"name": "data", "emptyDir": {}},
        {"name": "ckpt", "persistentVolumeClaim": {"claimName": "c"}},
    ],
    "volumeMounts": [{"name": "data", "mountPath": "/data"}],
    "affinity": [
        {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "a", "operator": "In", "values": ["b"]}]}
                    ]
                }
            }
        }
    ],
    "podTemplate.spec": [
        {"hostIPC": True},
        {"securityContext": {"runAsUser": 1000}},
        {"terminationGracePeriodSeconds": 5},
        {"restartPolicy": "Always"},
        {"hostname": "h"},
        {"containers": [{"name": "main", "command": ["x"]}]},
        {"containers": [{"name": "sidecar", "image": "busybox"}]},
    ],
}
ENV_NAMES = st.sampled_from(
    [
        "HF_TOKEN",
        "PET_NNODES",
        "PET_NODE_RANK",
        "BIGMODEL_METRICS_PORT",
        "PYTHONUNBUFFERED",
        "MASTER_ADDR",
        "1BAD",
        "a.b",
    ]
)


def _typed(field: Field) -> st.SearchStrategy[Any]:
    """Values of the field's type: in and past its bounds, right and wrong names and
    quantities; for a free-form field, valid Kubernetes shapes or anything."""
    schema, last = field.schema, field.path[-1]
    if field.free_form:
        known = FREE_VALUES.get(field.key)
        return JSON if known is None else st.sampled_from(known) | JSON
    if "enum" in schema:
        return st.sampled_from(schema["enum"]) | st.text(max_size=10)
    if schema.get("x-kubernetes-int-or-string"):
        return st.integers(-2, 2**31) | QUANTITIES
    kind = schema.get("type")
    if kind == "integer":
        low, high = schema.get("minimum", -(2**31)), schema.get("maximum", 2**31)
        return st.integers(low - 2, high + 2) | st.sampled_from([0, -1, 2**31, 2**63])
    if kind == "number":
        return st.floats(-10, 1e6, allow_nan=False) | st.sampled_from([0.0, -0.5, 1.0, 1e308])
    if kind == "boolean":
        return st.booleans()
    if kind == "string":
        if last in ("mountPath", "path"):
            return PATHS | st.text(max_size=20)
        if last == "name" and "env" in field.path:
            return ENV_NAMES
        return NAMES | QUANTITIES | st.text(max_size=30)
    parts = children(field)
    if kind == "array" and "[]" in parts:
        return st.lists(_typed(parts.pop("[]")), max_size=3)
    if "{}" in parts:
        return st.dictionaries(MAP_KEYS, _typed(parts.pop("{}")), max_size=3)
    if parts:
        return st.fixed_dictionaries({}, optional={n: _typed(c) for n, c in parts.items()})
    return JSON


@dataclass
class Fuzzed:
    """A generated resource, the paths changed, and whether a free-form field was one."""

    obj: dict[str, Any]
    changed: list[str]
    free_form: bool


def _set(obj: dict[str, Any], path: Path_, key: str, value: Any, remove: bool) -> str:
    """Set (or remove) the field at `path` in `obj`, creating what is missing (an item
    stands for `[]`, `key` for `{}`); the field's name, as errors name it."""
    node: Any = obj
    shown: list[str] = []
    for i, part in enumerate(path):
        step: Any = 0 if part == "[]" else key if part == "{}" else part
        shown.append(f"[{step}]" if part == "[]" else str(step))
        if isinstance(node, list):
            node.extend({} for _ in range(step + 1 - len(node)))
        if i == len(path) - 1:
            if not remove:
                node[step] = value
            elif isinstance(node, dict):
                node.pop(step, None)
            break
        wanted = list if path[i + 1] == "[]" else dict
        present = step < len(node) if isinstance(node, list) else step in node
        if not present or not isinstance(node[step], wanted):
            node[step] = wanted()
        node = node[step]
    return ".".join(shown)


@st.composite
def resources(draw: st.DrawFn, kind: str) -> Fuzzed:
    """A BigModelJob or BigModelService: its example with one to three fields changed."""
    obj = copy.deepcopy(BASES[kind])
    obj["metadata"] = {
        "name": draw(st.sampled_from(["demo", "a" * 40, "a" * 50, "x-1"])),
        "namespace": "ns",
        "uid": "u-1",
        "generation": 1,
    }
    changed, free = [], False
    for field in draw(st.lists(st.sampled_from(FIELDS[kind][1:]), min_size=1, max_size=3)):
        how = draw(st.sampled_from(["typed"] * 8 + ["any", "remove"]))
        value = draw(JSON) if how == "any" else draw(_typed(field)) if how == "typed" else None
        key = draw(MAP_KEYS)
        changed.append(_set(obj, field.path, key, value, how == "remove"))
        free = free or field.holds_free_form
    return Fuzzed(obj, changed, free)


# -- what must hold -----------------------------------------------------------------------------


def _admitted(kind: str, obj: dict[str, Any]) -> dict[str, Any] | list[str]:
    """The object as stored (pruned, defaulted), or the CRD's errors, each naming a field."""
    schema = SCHEMAS[kind]
    stored = schema.default(schema.prune(copy.deepcopy(obj)))
    errors = schema.validate(stored, None)
    if not errors:
        return stored
    # kube adds a cause without a field ("some validation rules were not checked ...")
    assert any(e.field for e in errors), f"no CRD error names a field: {errors}"
    return [str(e) for e in errors]


def _schema_errors(children: list[dict[str, Any]]) -> list[str]:
    """What the API server would answer for the children the Kubernetes schema refuses
    (strict): `<Kind> <name>: <field>: <why>`, as the operator reports a 422."""
    found = []
    for child in children:
        try:
            kubernetes_validate.validate(child, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = [f"[{p}]" if isinstance(p, int) else str(p) for p in exc.path]
            if exc.validator == "additionalProperties":  # kube names the unknown field
                known = (exc.schema or {}).get("properties") or {}
                path.append(sorted(set(exc.instance) - set(known))[0])
            found.append(
                f"{child['kind']} {child['metadata']['name']}: {'.'.join(path)}: {exc.message}"
            )
    return found


def _job(stored: dict[str, Any], fuzzed: Fuzzed) -> str:
    job = parse_resource(BigModelJob, stored)  # what the CRD admits, the models must take
    plan = decide_job(job, [], NOW, Timing())
    members = contract_of(job.spec.framework).members(job.spec)
    if plan.status.phase is JobPhase.FAILED:
        return _failed_invalid(plan.status)
    if job.spec.run_policy.suspend:  # nothing runs; what is wrong is said on resume
        assert plan.status.phase is JobPhase.SUSPENDED and not plan.create, plan
        if job_spec_errors(job):
            return "suspended"
    else:
        assert plan.create == members, plan
    ends = [members[0], *members[1:][-1:]]
    refused = _schema_errors([*build_services(job), *(build_pod(job, m) for m in ends)])
    if not refused:
        return "valid"
    assert fuzzed.free_form, f"children of a spec the user wrote right are refused: {refused}"
    problems = [Problem(Reason.INVALID, m) for m in refused]
    return "child-" + _failed_invalid(decide_job(job, [], NOW, Timing(), problems).status)


def _service(stored: dict[str, Any], fuzzed: Fuzzed) -> str:
    service = parse_resource(BigModelService, stored)
    replicas = service.spec.replicas or (
        service.spec.autoscaling.min_replicas if service.spec.autoscaling else 1
    )
    images = RuntimeImages()
    plan = decide_service(service, Seen(), Scaling(replicas), images, NOW)
    if plan.deployment is None:
        return _failed_invalid(plan.status)
    refused = _schema_errors([build_deployment(service, replicas, images), build_front(service)])
    if not refused:
        return "valid"
    assert fuzzed.free_form, f"children of a spec the user wrote right are refused: {refused}"
    failed = decide_service(service, Seen(), Scaling(replicas), images, NOW, refused)
    return "child-" + _failed_invalid(failed.status)


def _failed_invalid(status: Any) -> str:
    """`invalid` when the status says Failed, with a condition of reason Invalid whose
    message names a field."""
    assert status.phase is not None and status.phase.value == "Failed", status
    messages = [c.message for c in status.conditions if c.reason == Reason.INVALID]
    assert messages, status.conditions
    assert any("spec." in m or "metadata." in m for m in messages), messages
    return "invalid"


def check(kind: str, fuzzed: Fuzzed) -> str:
    """Run one generated resource through admission, models, decisions and builders; how it
    ended (`refused`, `invalid`, `child-invalid` or `valid`), or AssertionError."""
    stored = _admitted(kind, fuzzed.obj)
    if isinstance(stored, list):
        return "refused"
    return _job(stored, fuzzed) if kind == "BigModelJob" else _service(stored, fuzzed)
