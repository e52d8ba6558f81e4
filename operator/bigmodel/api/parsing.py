"""Body dict -> model, with validation errors as readable messages naming the field."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

ModelT = TypeVar("ModelT", bound=BaseModel)


class InvalidResourceError(ValueError):
    """A resource body that does not fit its model; `errors` name each field."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def parse_resource(model: type[ModelT], body: Mapping[str, Any]) -> ModelT:
    """Parse a resource body (a kopf body or a plain dict) into `model`."""
    try:
        return model.model_validate(dict(body))
    except ValidationError as exc:
        raise InvalidResourceError(error_messages(exc)) from exc


def error_messages(exc: ValidationError) -> list[str]:
    """One `path: problem` line per error, e.g. `spec.nodes: must be >= 1`."""
    return [f"{field_path(error['loc'])}: {_problem(error)}" for error in exc.errors()]


def field_path(loc: tuple[int | str, ...]) -> str:
    """Kubernetes-style path of a pydantic error location: `spec.env[0].name`."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


_BOUNDS = {
    "greater_than_equal": ("ge", ">="),
    "greater_than": ("gt", ">"),
    "less_than_equal": ("le", "<="),
    "less_than": ("lt", "<"),
}
_MESSAGES = {
    "missing": "required",
    "string_too_long": "must be at most {max_length} characters",
    "string_too_short": "must be at least {min_length} characters",
    "too_long": "must have at most {max_length} items",
    "too_short": "must have at least {min_length} items",
    "string_pattern_mismatch": "must match {pattern}",
    "literal_error": "must be one of {expected}",
    "enum": "must be one of {expected}",
}


def _problem(error: ErrorDetails) -> str:
    """Short description of what is wrong."""
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    kind = error["type"]
    if kind in _BOUNDS:
        key, operator = _BOUNDS[kind]
        return f"must be {operator} {ctx[key]}"
    if kind in _MESSAGES:
        return _MESSAGES[kind].format(**ctx)
    return str(error["msg"]).removeprefix("Value error, ")
