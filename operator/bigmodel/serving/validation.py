"""Reading JSON request fields with messages that name the field (`inputs[0].shape`)."""

from __future__ import annotations

import json
import math
from typing import Any

from bigmodel.serving.errors import invalid

_MISSING: Any = object()

_KINDS: dict[str, str] = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "array": "an array",
    "object": "an object",
}


def is_kind(value: Any, kind: str) -> bool:
    """Whether a JSON value is of a JSON Schema-like kind (a bool is never a number)."""
    if kind == "integer":
        return type(value) is int
    if kind == "number":
        return type(value) in (int, float) and math.isfinite(value)
    expected = {"string": str, "boolean": bool, "array": list, "object": dict}[kind]
    return isinstance(value, expected)


def shown(value: Any) -> str:
    """A short JSON rendering of a bad value for an error message."""
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def field(body: dict[str, Any], key: str, kind: str, path: str, default: Any = _MISSING) -> Any:
    """`body[key]` checked against `kind`; absent or null takes `default` when one is given."""
    value = body.get(key)
    if value is None:
        if default is _MISSING:
            raise invalid(path, "is required")
        return default
    if not is_kind(value, kind):
        raise invalid(path, f"must be {_KINDS[kind]}, got {shown(value)}")
    return value


def json_object(body: Any) -> dict[str, Any]:
    """The request body when it is a JSON object."""
    if not isinstance(body, dict):
        raise invalid("body", f"must be a JSON object, got {shown(body)}")
    return body
