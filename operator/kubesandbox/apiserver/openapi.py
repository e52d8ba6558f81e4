"""The `/openapi/v2` and `/openapi/v3` documents: built-in schemas plus each served CRD version.

kubectl reads them for `kubectl explain` (schemas found by `x-kubernetes-group-version-kind`)
and to decide server-side field validation: it looks for a `fieldValidation` parameter on
the PATCH operation of the kind's group-version (cli-runtime's queryParamVerifierV3). Paths
come from the sandbox registry's resource types; built-in documents are computed once.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
from collections.abc import Iterable
from typing import Any

from kubesandbox.apiserver import k8s_schemas
from kubesandbox.apiserver.k8s_schemas import OBJECT_META, api_version_of
from kubesandbox.apiserver.registry import BUILTINS, ResourceType, crd_resource_types
from kubesandbox.objects import Obj

BUILTIN_GROUP_VERSIONS: tuple[str, ...] = tuple(
    dict.fromkeys([*(rt.api_version for rt in BUILTINS), "policy/v1"])
)
"""The built-in group-versions with a document: every served one (kubectl and helm validate
a manifest against its group-version's document, and refuse it when there is none), and
policy/v1."""
_META = "io.k8s.apimachinery.pkg.apis.meta.v1."
_SCALE = "io.k8s.api.autoscaling.v1.Scale"
_V2_REFS, _V3_REFS = "#/definitions/", "#/components/schemas/"
_INFO = {"title": "Kubernetes", "version": k8s_schemas.KUBERNETES_VERSION}

_QUERY_PARAMS: dict[str, tuple[str, str]] = {
    "pretty": ("string", "If 'true', then the output is pretty printed."),
    "dryRun": ("string", "When present, modifications are not persisted (All)."),
    "fieldManager": ("string", "A name associated with the actor making these changes."),
    "fieldValidation": (
        "string",
        "How to handle unknown or duplicate fields: Ignore, Warn, Strict.",
    ),
    "force": ("boolean", "Force Apply requests: re-acquire fields owned by other managers."),
    "allowWatchBookmarks": ("boolean", "Requests watch events with type BOOKMARK."),
    "continue": ("string", "Continue a paginated list from this token."),
    "fieldSelector": ("string", "Restrict the returned objects by their fields."),
    "labelSelector": ("string", "Restrict the returned objects by their labels."),
    "limit": ("integer", "Maximum number of responses to return for a list call."),
    "resourceVersion": ("string", "Which resource versions a request may be served from."),
    "resourceVersionMatch": ("string", "How resourceVersion is applied to list calls."),
    "sendInitialEvents": ("boolean", "With watch=true: start with synthetic ADDED events."),
    "timeoutSeconds": ("integer", "Timeout for the list/watch call."),
    "watch": ("boolean", "Watch for changes and return them as a stream of events."),
    "gracePeriodSeconds": ("integer", "Seconds before the object should be deleted."),
    "orphanDependents": ("boolean", "Deprecated: please use the PropagationPolicy."),
    "propagationPolicy": ("string", "Garbage collection policy: Orphan, Background, Foreground."),
}
_LIST = (
    "allowWatchBookmarks",
    "continue",
    "fieldSelector",
    "labelSelector",
    "limit",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
    "watch",
)
_WRITE = ("dryRun", "fieldManager", "fieldValidation")
_DELETE = ("dryRun", "gracePeriodSeconds", "orphanDependents", "propagationPolicy")
_PATCH_TYPES = ("application/apply-patch+yaml", "application/json-patch+json",
                "application/merge-patch+json")  # fmt: skip


def gv_path(api_version: str) -> str:
    """`v1` -> `api/v1`, `apps/v1` -> `apis/apps/v1` (the /openapi/v3 index keys)."""
    return f"apis/{api_version}" if "/" in api_version else f"api/{api_version}"


def crd_definition_name(group: str, version: str, kind: str) -> str:
    """kube-apiserver's name for a CRD schema: `com.example.v1.Widget`."""
    return ".".join([*reversed(group.split(".")), version, kind])


def _convert(node: Any, refs: str) -> Any:
    """A packaged JSON-schema node as an OpenAPI one (`$ref` prefix, no `null` types)."""
    if not isinstance(node, dict):
        return node
    out: Obj = {}
    for key, value in node.items():
        if key in ("properties", "patternProperties"):
            out[key] = {name: _convert(v, refs) for name, v in value.items()}
        elif key in ("items", "additionalProperties", "not"):
            out[key] = _convert(value, refs)
        elif key in ("allOf", "anyOf"):
            out[key] = [_convert(v, refs) for v in value]
        elif key not in ("$ref", "oneOf", "type"):
            out[key] = value
    declared = [t.get("type") for t in node.get("oneOf", [])] + [node.get("type")]
    types = [t for ts in declared for t in (ts if isinstance(ts, list) else [ts]) if t]
    if "string" in types and "integer" in types:
        out |= {"type": "string", "format": "int-or-string"}
    elif [t for t in types if t != "null"]:
        out["type"] = next(t for t in types if t != "null")
    if "$ref" not in node:
        return out
    target = refs + node["$ref"].rsplit("/", 1)[-1]
    if refs == _V2_REFS or not out:
        return {"$ref": target, **out}
    return {"allOf": [{"$ref": target}], **out}


def _refs(node: Any) -> Iterable[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"].rsplit("/", 1)[-1]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _closure(names: Iterable[str]) -> list[str]:
    """The definitions named and every definition they reference, sorted."""
    defs, seen = k8s_schemas.definitions(), set()
    pending = list(names)
    while pending:
        name = pending.pop()
        if name not in seen and name in defs:
            seen.add(name)
            pending.extend(_refs(defs[name]))
    return sorted(seen)


def _kinds_of(api_version: str) -> list[str]:
    return [
        name
        for name, schema in k8s_schemas.definitions().items()
        for gvk in k8s_schemas.group_version_kinds(schema)
        if api_version_of(gvk["group"], gvk["version"]) == api_version
    ]


def _k8s_schemas(api_versions: Iterable[str], refs: str) -> dict[str, Obj]:
    names = [n for v in api_versions for n in _kinds_of(v)]
    extra = [OBJECT_META, f"{_META}ListMeta", f"{_META}Patch", f"{_META}Status", _SCALE]
    schemas = {n: _convert(k8s_schemas.definitions()[n], refs) for n in _closure(names + extra)}
    for name in names:  # the packaged data pins apiVersion/kind with an enum; the API has none
        for field in ("apiVersion", "kind"):
            schemas[name].get("properties", {}).get(field, {}).pop("enum", None)
    return schemas


def _crd_schemas(crds: list[Obj], refs: str, api_version: str | None = None) -> dict[str, Obj]:
    """Each served CRD version's object and list schemas (optionally of one group-version)."""
    type_meta = _convert(k8s_schemas.definitions()["io.k8s.api.apps.v1.Deployment"], refs)[
        "properties"
    ]
    type_meta = {k: v for k, v in type_meta.items() if k in ("apiVersion", "kind")}
    for field in type_meta.values():
        field.pop("enum", None)
    schemas: dict[str, Obj] = {}
    for crd in crds:
        spec = crd["spec"]
        for version in spec["versions"]:
            if not version.get("served", True):
                continue
            if api_version not in (None, api_version_of(spec["group"], version["name"])):
                continue
            gvk = {
                "group": spec["group"],
                "version": version["name"],
                "kind": spec["names"]["kind"],
            }
            name = crd_definition_name(gvk["group"], gvk["version"], gvk["kind"])
            schema = copy.deepcopy((version.get("schema") or {}).get("openAPIV3Schema") or {})
            metadata = _convert(
                {"$ref": OBJECT_META, "description": "Standard object's metadata."}, refs
            )
            schema["properties"] = {
                **type_meta,
                **schema.get("properties", {}),
                "metadata": metadata,
            }
            schemas[name] = {**schema, "x-kubernetes-group-version-kind": [gvk]}
            list_gvk = {**gvk, "kind": gvk["kind"] + "List"}
            schemas[name + "List"] = {
                "type": "object",
                "required": ["items"],
                "properties": {
                    **type_meta,
                    "items": {"type": "array", "items": {"$ref": refs + name}},
                    "metadata": _convert({"$ref": f"{_META}ListMeta"}, refs),
                },
                "x-kubernetes-group-version-kind": [list_gvk],
            }
    return schemas


def openapi_v2(
    crds: list[Obj], builtin_group_versions: Iterable[str] = BUILTIN_GROUP_VERSIONS
) -> Obj:
    """The swagger 2.0 document (`/openapi/v2`): definitions only, paths left empty."""
    definitions = {
        **_k8s_schemas_cached(tuple(builtin_group_versions), _V2_REFS),
        **_crd_schemas(crds, _V2_REFS),
    }
    return {"swagger": "2.0", "info": _INFO, "paths": {}, "definitions": definitions}


@functools.cache
def _k8s_schemas_cached(api_versions: tuple[str, ...], refs: str) -> dict[str, Obj]:
    return _k8s_schemas(api_versions, refs)


def _parameter(name: str, where: str = "query") -> Obj:
    type_, description = _QUERY_PARAMS.get(name, ("string", f"name of the {name}"))
    parameter: Obj = {"name": name, "in": where, "description": description}
    if where == "path":
        parameter["required"] = True
    return parameter | {"schema": {"type": type_, "uniqueItems": True}}


def _camel(text: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in text.replace("-", ".").split("."))


def _operation(
    rt: ResourceType, action: str, verb: str, sub: str, body: str, params: tuple[str, ...]
) -> Obj:
    group = _camel(rt.group.removesuffix(".k8s.io")) if rt.group else "Core"
    scope = "Namespaced" if rt.namespaced and action != "listAll" else ""
    op_id = f"{action.removesuffix('All')}{group}{_camel(rt.version)}{scope}{rt.kind}{_camel(sub)}"
    gvk = {"group": "autoscaling", "version": "v1", "kind": "Scale"} if sub == "scale" else {
        "group": rt.group, "version": rt.version, "kind": rt.kind}  # fmt: skip
    response = {"content": {"application/json": {"schema": {"$ref": _V3_REFS + body}}}}
    operation: Obj = {
        "tags": [f"{group[:1].lower()}{group[1:]}_{rt.version}"],
        "description": f"{verb} {sub or rt.kind}",
        "operationId": op_id + ("ForAllNamespaces" if action == "listAll" else ""),
        "parameters": [_parameter(p) for p in params],
        "responses": {"200": {"description": "OK", **response}},
        "x-kubernetes-action": verb,
        "x-kubernetes-group-version-kind": gvk,
    }
    if verb in ("post", "put"):
        operation["requestBody"] = {
            "content": {"*/*": response["content"]["application/json"]},
            "required": True,
        }
    if verb == "patch":
        types = (
            (*_PATCH_TYPES, "application/strategic-merge-patch+json")
            if not rt.crd
            else _PATCH_TYPES
        )
        patch_schema = {"schema": {"$ref": f"{_V3_REFS}{_META}Patch"}}
        operation["requestBody"] = {"content": dict.fromkeys(types, patch_schema), "required": True}
    return operation


def _paths(rt: ResourceType, kind_schema: str) -> Obj:
    """The REST paths of one resource type, with kube-apiserver's operations and parameters."""
    base = f"/{gv_path(rt.api_version)}"
    scoped = (
        f"{base}/namespaces/{{namespace}}/{rt.plural}" if rt.namespaced else f"{base}/{rt.plural}"
    )
    path_params = [_parameter("namespace", "path")] if rt.namespaced else []
    item_params = [_parameter("name", "path"), *path_params, _parameter("pretty")]
    status = f"{_META}Status"
    paths: Obj = {
        scoped: {
            "get": _operation(rt, "list", "list", "", kind_schema + "List", _LIST),
            "post": _operation(rt, "create", "post", "", kind_schema, _WRITE),
            "delete": _operation(
                rt, "deleteCollection", "deletecollection", "", status, _DELETE + _LIST
            ),
            "parameters": [*path_params, _parameter("pretty")],
        },
    }
    for sub in ("", *(s for s in rt.subresources if s in ("status", "scale"))):
        body = _SCALE if sub == "scale" else kind_schema
        item: Obj = {
            "get": _operation(rt, "read", "get", sub, body, ()),
            "put": _operation(rt, "replace", "put", sub, body, _WRITE),
            "patch": _operation(rt, "patch", "patch", sub, body, (*_WRITE, "force")),
            "parameters": item_params,
        }
        if not sub:
            item["delete"] = _operation(rt, "delete", "delete", "", status, _DELETE)
        paths[f"{scoped}/{{name}}" + (f"/{sub}" if sub else "")] = item
    if rt.namespaced:
        paths[f"{base}/{rt.plural}"] = {
            "get": _operation(rt, "listAll", "list", "", kind_schema + "List", _LIST),
            "parameters": [_parameter("pretty")],
        }
    return paths


def _crd_group_versions(crds: list[Obj]) -> list[str]:
    return sorted({rt.api_version for crd in crds for rt in crd_resource_types(crd)})


def _api_version_of_path(path: str) -> str | None:
    parts = path.strip("/").split("/")
    if parts[0] == "api" and len(parts) == 2:
        return parts[1]
    return "/".join(parts[1:]) if parts[0] == "apis" and len(parts) == 3 else None


def openapi_v3_group_version(
    gv_path_: str, crds: list[Obj], builtin_group_versions: Iterable[str] = BUILTIN_GROUP_VERSIONS
) -> Obj | None:
    """The OpenAPI 3.0 document of `api/v1` or `apis/<group>/<version>`; None when not served.

    Built-in documents are cached and shared: callers serialize them, never mutate them.
    """
    api_version = _api_version_of_path(gv_path_)
    if api_version in tuple(builtin_group_versions):
        return _builtin_document(api_version)
    types = [rt for crd in crds for rt in crd_resource_types(crd) if rt.api_version == api_version]
    if not types:
        return None
    schemas = {**_k8s_schemas_cached((), _V3_REFS), **_crd_schemas(crds, _V3_REFS, api_version)}
    paths: Obj = {}
    for rt in types:
        paths |= _paths(rt, crd_definition_name(rt.group, rt.version, rt.kind))
    return _document(paths, schemas)


@functools.cache
def _builtin_document(api_version: str) -> Obj:
    schemas = _k8s_schemas((api_version,), _V3_REFS)
    paths: Obj = {}
    for rt in BUILTINS:
        if rt.api_version == api_version:
            name = k8s_schemas.definition_name(rt.api_version, rt.kind)
            if name:
                paths |= _paths(rt, name)
    return _document(paths, schemas)


def _document(paths: Obj, schemas: dict[str, Obj]) -> Obj:
    return {"openapi": "3.0.0", "info": _INFO, "paths": paths, "components": {"schemas": schemas}}


def document_hash(document: Obj) -> str:
    """A deterministic content hash (upper-case SHA-512 hex, as kube-apiserver's ETags)."""
    encoded = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha512(encoded).hexdigest().upper()


@functools.cache
def _builtin_hash(api_version: str) -> str:
    return document_hash(_builtin_document(api_version))


def openapi_v3_index(
    crds: list[Obj], builtin_group_versions: Iterable[str] = BUILTIN_GROUP_VERSIONS
) -> Obj:
    """The `/openapi/v3` body: every served group-version with its content-hashed URL."""
    builtins = tuple(builtin_group_versions)
    hashes = {v: _builtin_hash(v) for v in builtins}
    for api_version in _crd_group_versions(crds):
        if api_version not in hashes:
            document = openapi_v3_group_version(gv_path(api_version), crds, builtins)
            hashes[api_version] = document_hash(document or {})
    return {
        "paths": {
            gv_path(v): {"serverRelativeURL": f"/openapi/v3/{gv_path(v)}?hash={h}"}
            for v, h in sorted(hashes.items(), key=lambda item: gv_path(item[0]))
        }
    }
