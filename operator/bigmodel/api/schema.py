"""Pydantic JSON schema -> structural OpenAPI v3 schema, as CustomResourceDefinitions need."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

# Keywords copied as they are; anything else pydantic emits is an error, so that a new model
# feature never slips an unsupported keyword into the CRDs.
_COPIED = frozenset(
    {
        "type",
        "format",
        "description",
        "default",
        "enum",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "pattern",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "required",
        "nullable",
        "x-kubernetes-int-or-string",
        "x-kubernetes-preserve-unknown-fields",
        "x-kubernetes-list-type",
        "x-kubernetes-list-map-keys",
        "x-kubernetes-map-type",
    }
)


class SchemaConversionError(ValueError):
    """The model uses a JSON-schema feature a structural schema cannot express."""


def structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The structural schema of `model`: $refs inlined, Optional unwrapped, no titles."""
    raw = model.model_json_schema(by_alias=True)
    return _convert(raw, raw.get("$defs", {}))


def _convert(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Convert one schema node (recursively)."""
    node = {k: v for k, v in node.items() if k not in ("title", "$defs")}
    out: dict[str, Any] = {}
    if "$ref" in node:
        out = _convert(defs[node.pop("$ref").rsplit("/", 1)[1]], defs)
    if "anyOf" in node and not node.get("x-kubernetes-int-or-string"):
        out = _convert(_drop_null(node.pop("anyOf")), defs)
        if node.get("default", 0) is None:
            del node["default"]
    for key, value in node.items():
        if key == "properties":
            out[key] = {name: _convert(prop, defs) for name, prop in value.items()}
        elif key == "items":
            out[key] = _convert(value, defs)
        elif key == "additionalProperties":
            out.update(_additional_properties(value, defs))
        elif key == "x-kubernetes-validations":
            out[key] = [*out.get(key, []), *value]
        elif key == "description":
            out[key] = " ".join(value.split())
        elif key == "exclusiveMinimum":
            out.update(minimum=value, exclusiveMinimum=True)
        elif key == "exclusiveMaximum":
            out.update(maximum=value, exclusiveMaximum=True)
        elif key == "anyOf" or key in _COPIED:
            out[key] = value
        else:
            raise SchemaConversionError(f"unsupported JSON-schema keyword {key!r}")
    return out


def _drop_null(branches: list[dict[str, Any]]) -> dict[str, Any]:
    """The one non-null branch of an Optional: absence, not null, means unset."""
    rest = [b for b in branches if b.get("type") != "null"]
    if len(rest) != 1:
        raise SchemaConversionError(f"unions are not structural: {branches}")
    return rest[0]


def _additional_properties(value: bool | dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """`additionalProperties: true` (free-form) becomes x-kubernetes-preserve-unknown-fields."""
    if value is True:
        return {"x-kubernetes-preserve-unknown-fields": True}
    if value is False:
        return {}
    return {"additionalProperties": _convert(value, defs)}
