"""Built-in Kubernetes schemas (from the packaged kubernetes-validate data) and schema walking.

A *schema node* is a JSON-schema dict as found in the definitions file or in a CRD's
`openAPIV3Schema`; `None` means "unknown" (callers then deduce the structure from the value:
maps merge granularly, lists are atomic, as structured-merge-diff does).
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any, Literal

Schema = dict[str, Any]
ListType = Literal["atomic", "set", "map"]

KUBERNETES_VERSION = "v1.33.0"
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_REF_PREFIX = "#/$defs/"


@functools.cache
def definitions() -> dict[str, Schema]:
    """All built-in definitions by name (`io.k8s.api.core.v1.PodSpec`), loaded once."""
    root = resources.files("kubernetes_validate") / "kubernetes-json-schema"
    data = (root / f"{KUBERNETES_VERSION}-local" / "_definitions.json").read_text("utf-8")
    defs: dict[str, Schema] = json.loads(data)["$defs"]
    return defs


def group_version_kinds(schema: Schema) -> list[dict[str, str]]:
    """The `x-kubernetes-group-version-kind` entries of a definition."""
    gvks: list[dict[str, str]] = schema.get("x-kubernetes-group-version-kind", [])
    return gvks


def api_version_of(group: str, version: str) -> str:
    """`apps`, `v1` -> `apps/v1`; the core group has no prefix."""
    return f"{group}/{version}" if group else version


@functools.cache
def _names_by_kind() -> dict[tuple[str, str], str]:
    index: dict[tuple[str, str], str] = {}
    for name, schema in definitions().items():
        for gvk in group_version_kinds(schema):
            key = (api_version_of(gvk["group"], gvk["version"]), gvk["kind"])
            index.setdefault(key, name)
    return index


def definition_name(api_version: str, kind: str) -> str | None:
    """The definition name of a built-in kind, or None when the kind is not built in."""
    return _names_by_kind().get((api_version, kind))


def ref(name: str) -> Schema:
    """A schema node referring to a built-in definition."""
    return {"$ref": _REF_PREFIX + name}


def builtin_schema(api_version: str, kind: str) -> Schema | None:
    """The schema of a built-in kind, or None for custom resources."""
    name = definition_name(api_version, kind)
    return ref(name) if name else None


def object_schema(api_version: str, kind: str, crd_schema: Schema | None = None) -> Schema:
    """Root schema of an object: a CRD's schema (metadata as ObjectMeta) or the built-in one."""
    if crd_schema is None:
        builtin = builtin_schema(api_version, kind)
        if builtin is not None:
            return builtin
        crd_schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    properties = {**crd_schema.get("properties", {}), "metadata": ref(OBJECT_META)}
    return {**crd_schema, "properties": properties}


def resolve(schema: Schema | None) -> Schema | None:
    """Follow a `$ref` (also the `allOf: [{$ref}]` form); the node's own keys win."""
    if schema is None:
        return None
    target = schema.get("$ref")
    if target is None and len(schema.get("allOf", [])) == 1:
        target = schema["allOf"][0].get("$ref")
    if target is None:
        return schema
    base = definitions()[target.removeprefix(_REF_PREFIX)]
    own = {k: v for k, v in schema.items() if k not in ("$ref", "allOf")}
    return {**base, **own}


def property_schema(schema: Schema | None, name: str) -> Schema | None:
    """The node of field `name` of an object node (a property or `additionalProperties`)."""
    node = resolve(schema)
    if node is None:
        return None
    found: Schema | None = node.get("properties", {}).get(name)
    if found is None and isinstance(node.get("additionalProperties"), dict):
        found = node["additionalProperties"]
    return found


def items_schema(schema: Schema | None) -> Schema | None:
    """The node of the items of an array node."""
    node = resolve(schema)
    return None if node is None else node.get("items")


def walk(schema: Schema | None, path: list[str]) -> Schema | None:
    """The node at a field path; array levels are stepped through transparently."""
    for name in path:
        if schema_type(schema) == "array":
            schema = items_schema(schema)
        schema = property_schema(schema, name)
    return schema


def schema_type(schema: Schema | None) -> str | None:
    """The JSON type of a node, ignoring the `null` alternative of optional fields."""
    node = resolve(schema)
    if node is None:
        return None
    declared = node.get("type")
    if isinstance(declared, list):
        declared = next((t for t in declared if t != "null"), None)
    if declared is None and node.get("x-kubernetes-int-or-string"):
        return "string"
    return declared if isinstance(declared, str) else None


def patch_strategy(schema: Schema | None) -> tuple[frozenset[str], str | None]:
    """Strategic merge metadata of a field: its strategies and its merge key."""
    node = resolve(schema) or {}
    strategies = node.get("x-kubernetes-patch-strategy", "")
    return frozenset(s for s in strategies.split(",") if s), node.get(
        "x-kubernetes-patch-merge-key"
    )


def list_type(schema: Schema | None) -> tuple[ListType, list[str]]:
    """Server-side apply list semantics: type and map keys (patch metadata as fallback)."""
    node = resolve(schema) or {}
    declared = node.get("x-kubernetes-list-type")
    if declared in ("set", "atomic"):
        return declared, []
    if declared == "map":
        return "map", list(node.get("x-kubernetes-list-map-keys", []))
    strategies, merge_key = patch_strategy(node)
    if "merge" in strategies:
        return ("map", [merge_key]) if merge_key else ("set", [])
    return "atomic", []


def is_atomic_map(schema: Schema | None) -> bool:
    """Whether an object node is replaced as a whole (`x-kubernetes-map-type: atomic`)."""
    node = resolve(schema) or {}
    return node.get("x-kubernetes-map-type") == "atomic"
