"""Kubernetes strategic merge patch (`application/strategic-merge-patch+json`) for built-ins.

Semantics of apimachinery's `strategicpatch.StrategicMergeMapPatch`: maps merge recursively,
`null` deletes a key, lists with patch strategy `merge` merge by their patch merge key (lists
of scalars become a union), other lists are replaced. Directives: `$patch: replace|delete`
(`merge` is accepted as a no-op), `$retainKeys`, `$deleteFromPrimitiveList/<field>`,
`$setElementOrder/<field>`. Order: `$setElementOrder` > patch order > live order.
"""

from __future__ import annotations

import copy
from typing import Any

from kubesandbox.apiserver import k8s_schemas
from kubesandbox.apiserver.k8s_schemas import Schema

DIRECTIVE = "$patch"
RETAIN_KEYS = "$retainKeys"
DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList/"
SET_ELEMENT_ORDER = "$setElementOrder/"


class StrategicMergeError(ValueError):
    """A malformed strategic merge patch (the API server answers 400/422)."""


class StrategicMergeUnsupported(StrategicMergeError):
    """Strategic merge patch on a kind without Go patch metadata: custom resources (415)."""

    def __init__(self, api_version: str, kind: str) -> None:
        super().__init__(
            f"strategic merge patch is not supported for {kind}.{api_version}: the body of the "
            "request was in an unknown format - accepted media types include: "
            "application/json-patch+json, application/merge-patch+json, "
            "application/apply-patch+yaml"
        )


def strategic_merge_patch(
    api_version: str, kind: str, original: dict[str, Any], patch: dict[str, Any]
) -> dict[str, Any]:
    """Apply a strategic merge patch to a built-in object; the inputs are left untouched."""
    schema = k8s_schemas.builtin_schema(api_version, kind)
    if schema is None:
        raise StrategicMergeUnsupported(api_version, kind)
    if not isinstance(patch, dict):
        raise StrategicMergeError("a strategic merge patch must be a JSON object")
    merged: dict[str, Any] = _merge_map(copy.deepcopy(original), copy.deepcopy(patch), schema)
    return merged


def _merge_map(original: dict[str, Any], patch: dict[str, Any], schema: Schema | None) -> Any:
    directive = patch.pop(DIRECTIVE, None)
    if directive == "replace":
        return patch
    if directive == "delete":
        return {}
    if directive not in (None, "merge"):
        raise StrategicMergeError(f"unknown patch type: {directive!r} in map: {patch}")
    _retain_keys(original, patch)
    orders = _pop_prefixed(patch, SET_ELEMENT_ORDER)
    for name, doomed in _pop_prefixed(patch, DELETE_FROM_PRIMITIVE_LIST).items():
        if isinstance(original.get(name), list):
            original[name] = [v for v in original[name] if v not in doomed]
    server = {name: original.get(name) or [] for name in orders}
    for key, value in patch.items():
        if value is None:
            original.pop(key, None)
        else:
            field = k8s_schemas.property_schema(schema, key)
            original[key] = _merge_value(original.get(key), value, field)
    for name, order in orders.items():
        if isinstance(original.get(name), list):
            _, merge_key = k8s_schemas.patch_strategy(k8s_schemas.property_schema(schema, name))
            original[name] = _normalize_order(original[name], order, server[name], merge_key)
    return original


def _merge_value(original: Any, patch: Any, field: Schema | None) -> Any:
    strategies, merge_key = k8s_schemas.patch_strategy(field)
    if isinstance(patch, dict) and isinstance(original, dict | None):
        if "replace" in strategies:
            return patch
        return _merge_map(original or {}, patch, field)
    if isinstance(patch, list) and isinstance(original, list | None) and "merge" in strategies:
        return _merge_list(original or [], patch, k8s_schemas.items_schema(field), merge_key)
    return patch


def _merge_list(
    original: list[Any], patch: list[Any], items: Schema | None, key: str | None
) -> Any:
    if not any(isinstance(v, dict) for v in original + patch):
        merged = original + [v for i, v in enumerate(patch) if v not in original + patch[:i]]
        return _normalize_order(merged, patch, original, None)
    if not key:
        raise StrategicMergeError("cannot merge lists of maps without a merge key")
    plain: list[dict[str, Any]] = []
    for item in patch:
        _require_key(item, key)
        directive = item.get(DIRECTIVE)
        if directive is None:
            plain.append(item)
        elif directive == "delete":
            original = [v for v in original if v.get(key) != item[key]]
        elif directive == "replace":
            original = []
        else:
            raise StrategicMergeError(f"unknown patch type in list: {directive!r}")
    merged = list(original)
    for item in plain:
        index = _find(merged, item[key], key)
        if index < 0:
            merged.append(_merge_map({}, item, items))
        else:
            merged[index] = _merge_map(merged[index], item, items)
    return _normalize_order(merged, plain, original, key)


def _require_key(item: Any, key: str) -> None:
    if not isinstance(item, dict):
        raise StrategicMergeError(f"list item {item!r} is not a map")
    if key not in item and item.get(DIRECTIVE) != "replace":
        raise StrategicMergeError(f"map: {item} does not contain declared merge key: {key}")


def _retain_keys(original: dict[str, Any], patch: dict[str, Any]) -> None:
    retain = patch.pop(RETAIN_KEYS, None)
    if retain is None:
        return
    if not isinstance(retain, list):
        raise StrategicMergeError("$retainKeys must be a list of field names")
    for key, value in patch.items():
        directive = key.startswith((DELETE_FROM_PRIMITIVE_LIST, SET_ELEMENT_ORDER))
        if value is not None and not directive and key not in retain:
            raise StrategicMergeError(f"field {key!r} is in the patch but not in $retainKeys")
    for key in [k for k in original if k not in retain]:
        del original[key]


def _pop_prefixed(patch: dict[str, Any], prefix: str) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for key in [k for k in patch if k.startswith(prefix)]:
        value = patch.pop(key)
        if not isinstance(value, list):
            raise StrategicMergeError(f"{key} must be a list")
        found[key.removeprefix(prefix)] = value
    return found


def _identity(item: Any, key: str | None) -> Any:
    return item.get(key) if key and isinstance(item, dict) else item


def _find(items: list[Any], value: Any, key: str | None) -> int:
    """Index of the item whose identity (merge key value, or itself) is `value`, else -1."""
    return next((i for i, v in enumerate(items) if _identity(v, key) == value), -1)


def _normalize_order(
    merged: list[Any], order: list[Any], server: list[Any], key: str | None
) -> Any:
    """Order items named in `order` as there, keep the others where the server had them."""
    wanted = [_identity(v, key) for v in order]
    named = [v for v in merged if _identity(v, key) in wanted]
    named.sort(key=lambda v: wanted.index(_identity(v, key)))
    server_only = [v for v in merged if _identity(v, key) not in wanted]
    server_only.sort(key=lambda v: _find(server, _identity(v, key), key))
    result: list[Any] = []
    while named and server_only:
        left = _find(server, _identity(server_only[0], key), key)
        right = _find(server, _identity(named[0], key), key)
        take_named = left >= 0 and right >= 0 and right < left
        result.append(named.pop(0) if take_named else server_only.pop(0))
    return result + server_only + named
