"""What every write passes before it is stored: kind and apiVersion, the name, an open
namespace, for custom resources their CRD schema (prune, default, validate), for Jobs and
DaemonSets the fields their controllers rely on."""

from __future__ import annotations

import re

from kubesandbox.apiserver import crdschema, errors
from kubesandbox.apiserver.cluster import workloads
from kubesandbox.apiserver.cluster.reads import Reads
from kubesandbox.apiserver.errors import Cause, StatusError
from kubesandbox.apiserver.registry import ResourceType
from kubesandbox.objects import Obj

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def check_type(rt: ResourceType, obj: Obj) -> None:
    """400 unless the body is an object of this kind and group; sets the served apiVersion."""
    if not isinstance(obj, dict):
        raise errors.bad_request("the body of the request must be a JSON object")
    api_version, kind = (
        obj.setdefault("apiVersion", rt.api_version),
        obj.setdefault("kind", rt.kind),
    )
    if kind != rt.kind or api_version.split("/")[0] != rt.api_version.split("/")[0]:
        raise errors.bad_request(
            f"the API version in the data ({api_version}) does not match the expected API "
            f"version ({rt.api_version})"
            if kind == rt.kind
            else f"{kind} in version {api_version} cannot be handled as a {rt.kind}"
        )
    obj["apiVersion"] = rt.api_version


def check_name(rt: ResourceType, meta: Obj) -> None:
    """422 unless the name is a DNS subdomain (a DNS label for namespaces and services)."""
    name = meta.get("name", "")
    if not name:
        cause = Cause(
            "FieldValueRequired",
            "Required value: name or generateName is required",
            "metadata.name",
        )
        raise errors.invalid(rt.kind, rt.group, name, [cause])
    pattern = _LABEL if rt.plural in ("namespaces", "services") else _NAME
    if len(name) > 253 or not pattern.match(name):
        msg = (
            f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of lower case '
            "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric "
            "character"
        )
        raise errors.invalid(
            rt.kind, rt.group, name, [Cause("FieldValueInvalid", msg, "metadata.name")]
        )


class Admission:
    """The namespace and schema checks, which read the cluster; CRD schemas compiled once."""

    def __init__(self, reads: Reads) -> None:
        self.reads = reads
        self._schemas: dict[tuple[str, str, str], crdschema.CRDSchema | None] = {}

    def check_namespace_open(self, ns: str) -> None:
        """404 for a missing namespace, 403 for a terminating one."""
        namespace = self.reads.store.get("namespaces", "", ns)
        if namespace is None:
            raise errors.not_found("", "namespaces", ns)
        if namespace["metadata"].get("deletionTimestamp"):
            raise StatusError(
                403,
                f"unable to create new content in namespace {ns} because it is being terminated",
                "Forbidden",
            )

    def raw_schema(self, rt: ResourceType) -> Obj | None:
        """The openAPIV3Schema of a custom resource version (None for built-ins)."""
        crd = self.reads.crd_of(rt)
        if crd is None:
            return None
        version: Obj = next((v for v in crd["spec"]["versions"] if v["name"] == rt.version), {})
        schema: Obj | None = (version.get("schema") or {}).get("openAPIV3Schema")
        return schema

    def _schema(self, rt: ResourceType) -> crdschema.CRDSchema | None:
        """The CRDSchema of a custom resource version (None for built-ins or no schema)."""
        crd = self.reads.crd_of(rt)
        if crd is None:
            return None
        key = (rt.crd, rt.version, crd["metadata"]["resourceVersion"])
        if key not in self._schemas:
            schema = self.raw_schema(rt)
            self._schemas[key] = None if schema is None else crdschema.CRDSchema(schema)
        return self._schemas[key]

    def admit(
        self, rt: ResourceType, obj: Obj, old: Obj | None, field_validation: str
    ) -> list[str]:
        """Prune, default and validate a custom resource in place; 400/422 when rejected.
        Check a Job's or DaemonSet's fields. Returns the warnings for unknown fields
        (fieldValidation Warn)."""
        schema = self._schema(rt)
        if schema is None:
            causes = [] if rt.crd else workloads.problems(obj)
            if causes:
                raise errors.invalid(rt.kind, rt.group, obj["metadata"]["name"], causes)
            return []
        unknown = schema.unknown_fields(obj)
        pruned = schema.prune(obj)
        warnings = [f'unknown field "{path}"' for path in unknown]
        if unknown and field_validation == "Strict":
            raise errors.bad_request(
                f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                f"strict decoding error: {', '.join(warnings)}"
            )
        defaulted = schema.default(pruned)
        problems = schema.validate(defaulted, old)
        if problems:
            causes = [Cause(p.type, p.message, p.field) for p in problems]
            raise errors.invalid(rt.kind, rt.group, obj["metadata"]["name"], causes)
        obj.clear()
        obj.update(defaulted)
        return warnings if field_validation == "Warn" else []
