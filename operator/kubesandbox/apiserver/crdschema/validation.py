"""OpenAPI v3 validation (pure) through jsonschema, with kube-apiserver's error messages, and
the duplicate checks of `x-kubernetes-list-type: map|set` lists."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError

from kubesandbox.apiserver.crdschema.nodes import FieldError, Node, children, join

_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def to_json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Translate OpenAPI v3 (nullable, int-or-string) to draft 4 JSON Schema."""
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key.startswith("x-kubernetes-") or key == "nullable":
            continue
        if key == "properties":
            out[key] = {name: to_json_schema(prop) for name, prop in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
            out[key] = to_json_schema(value)
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [to_json_schema(branch) for branch in value]
        else:
            out[key] = value
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("anyOf", None)
        out["type"] = ["integer", "string"]
    if schema.get("nullable") and "type" in out:
        out["type"] = [*_as_list(out["type"]), "null"]
    return out


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _required(
    validator: Any, required: list[str], instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    """Like draft 4 `required`, with the missing field in the error path."""
    if validator.is_type(instance, "object"):
        for name in required:
            if name not in instance:
                yield ValidationError("Required value", path=[name])


Validator = jsonschema.validators.extend(jsonschema.Draft4Validator, {"required": _required})


def is_date_time(value: object) -> bool:
    """RFC 3339 date-time, as kube-apiserver checks `format: date-time`."""
    if not isinstance(value, str):
        return True
    if not _DATE_TIME.match(value):
        return False
    datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    return True


def field_path(root: Node, parts: list[str | int]) -> str:
    """Format an instance path, telling fields from map keys through the schema."""
    path, node = "", root
    for part in parts:
        if isinstance(part, int):
            path, node = join(path, part, False), node.items or Node({})
        elif part in node.properties:
            path, node = join(path, part, False), node.properties[part]
        else:
            path, node = join(path, part, True), node.additional or Node({})
    return path


def show(value: Any) -> str:
    """A value as kube-apiserver prints it in messages."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _json_type(value: Any) -> str:
    """JSON type name of a decoded value."""
    names = ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"))
    for kind, name in (*names, (dict, "object"), (list, "array")):
        if isinstance(value, kind):
            return name
    return "null"


def openapi_error(error: ValidationError, path: str) -> FieldError:
    """The StatusCause of one OpenAPI keyword failure."""
    keyword, limit, value = error.validator, error.validator_value, error.instance
    body = f"{path} in body"
    invalid = f"Invalid value: {show(value)}: {body}"
    if keyword == "required":
        return FieldError("FieldValueRequired", path, "Required value")
    if keyword == "type":
        expected = ",".join(t for t in _as_list(limit) if t != "null")
        got = _json_type(value)
        return FieldError(
            "FieldValueTypeInvalid",
            path,
            f'Invalid value: "{got}": {body} must be of type {expected}: "{got}"',
        )
    if keyword == "enum":
        supported = ", ".join(show(v) for v in limit)
        return FieldError(
            "FieldValueNotSupported",
            path,
            f"Unsupported value: {show(value)}: supported values: {supported}",
        )
    if keyword == "maxLength":
        return FieldError(
            "FieldValueTooLong", path, f"Too long: may not be more than {limit} bytes"
        )
    if keyword in ("maxItems", "maxProperties"):
        return FieldError(
            "FieldValueTooMany", path, f"Too many: {len(value)}: must have at most {limit} items"
        )
    exclusive = error.schema.get(
        "exclusiveMinimum" if keyword == "minimum" else "exclusiveMaximum", False
    )
    details = {
        "minimum": f"should be greater than {'' if exclusive else 'or equal to '}{limit}",
        "maximum": f"should be less than {'' if exclusive else 'or equal to '}{limit}",
        "minLength": f"should be at least {limit} chars long",
        "minItems": f"should have at least {limit} items",
        "minProperties": f"should have at least {limit} properties",
        "pattern": f"should match '{limit}'",
        "format": f"must be of type {limit}: {show(value)}",
    }
    return FieldError("FieldValueInvalid", path, f"{invalid} {details.get(keyword, error.message)}")


def list_errors(value: Any, node: Node, path: str) -> list[FieldError]:
    """Duplicates in `x-kubernetes-list-type: map|set` lists, anywhere in `value`."""
    errors: list[FieldError] = []
    for _, item, child, child_path in children(value, node, path):
        errors += list_errors(item, child, child_path)
    list_type = node.schema.get("x-kubernetes-list-type")
    if not isinstance(value, list) or list_type not in ("map", "set"):
        return errors
    keys = node.schema.get("x-kubernetes-list-map-keys", [])
    seen: list[Any] = []
    for i, item in enumerate(value):
        key = (
            {k: item.get(k) for k in keys}
            if list_type == "map" and isinstance(item, dict)
            else item
        )
        if key in seen:
            errors.append(
                FieldError("FieldValueDuplicate", f"{path}[{i}]", f"Duplicate value: {show(key)}")
            )
        seen.append(key)
    return errors
