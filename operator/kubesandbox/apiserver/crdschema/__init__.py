"""Custom resources treated as kube-apiserver treats them: structural defaulting, pruning,
OpenAPI v3 validation (through jsonschema) and CEL `x-kubernetes-validations` (through the
`cel` package). Pure: no I/O.

Known gaps versus kube-apiserver: no validation ratcheting on update, no CEL cost limits, the
CEL Kubernetes library (quantity(), url(), isSorted(), ...) and `.?` optional syntax are not
available, and date-time fields reach CEL as strings, not timestamps."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import cel
import cel.stdlib
import jsonschema
from jsonschema.exceptions import ValidationError

_MISSING: Any = object()
_ROOT_KEPT = ("apiVersion", "kind", "metadata")
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_BLOCKED_CEL = (
    "some validation rules were not checked because the object was invalid; "
    "correct the existing errors to complete validation"
)


@dataclass(frozen=True)
class FieldError:
    """One rejected field, as a kube-apiserver StatusCause."""

    type: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


@dataclass(frozen=True)
class _Rule:
    """A compiled `x-kubernetes-validations` entry."""

    source: str
    program: Any
    message: str
    message_program: Any | None
    field_path: str
    reason: str
    transition: bool
    optional_old_self: bool


@dataclass
class _Node:
    """A schema node with its children and compiled rules."""

    schema: dict[str, Any]
    properties: dict[str, _Node] = field(default_factory=dict)
    items: _Node | None = None
    additional: _Node | None = None
    rules: list[_Rule] = field(default_factory=list)

    @property
    def preserve_unknown(self) -> bool:
        """Whether fields the schema does not list are kept."""
        return bool(self.schema.get("x-kubernetes-preserve-unknown-fields"))

    @property
    def type_name(self) -> str:
        """The declared type, as CEL errors show it ("" for int-or-string)."""
        return str(self.schema.get("type", ""))


class CRDSchema:
    """One version's openAPIV3Schema, compiled once; applies it to objects."""

    def __init__(self, openapi_v3_schema: dict[str, Any]) -> None:
        self._root = _compile(copy.deepcopy(openapi_v3_schema))
        checker = jsonschema.FormatChecker(formats=())
        checker.checks("date-time", raises=ValueError)(_is_date_time)
        self._validator = _Validator(_to_json_schema(openapi_v3_schema), format_checker=checker)

    def default(self, obj: dict[str, Any]) -> dict[str, Any]:
        """A copy of `obj` with schema defaults applied and non-nullable nulls dropped."""
        result: dict[str, Any] = _default(copy.deepcopy(obj), self._root)
        return result

    def prune(self, obj: dict[str, Any]) -> dict[str, Any]:
        """A copy of `obj` without the fields the schema does not know."""
        result: dict[str, Any] = _prune(obj, self._root, "", [], root=True)
        return result

    def unknown_fields(self, obj: dict[str, Any]) -> list[str]:
        """Paths that `prune` drops (for fieldValidation=Strict|Warn)."""
        dropped: list[str] = []
        _prune(obj, self._root, "", dropped, root=True)
        return dropped

    def validate(self, obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[FieldError]:
        """Every error of `obj` (an update of `old` when given); empty when valid."""
        errors = [self._field_error(e) for e in self._validator.iter_errors(obj)]
        errors += _list_errors(obj, self._root, "")
        if any(e.type == "FieldValueTypeInvalid" for e in errors):
            return [*errors, FieldError("FieldValueInvalid", "", _BLOCKED_CEL)]
        old_root = _MISSING if old is None else old
        return errors + list(_cel_errors(obj, old_root, self._root, ""))

    def _field_error(self, error: ValidationError) -> FieldError:
        """Map a jsonschema error to the cause kube-apiserver reports."""
        path = _path(self._root, list(error.absolute_path))
        return _openapi_error(error, path)


# --- compilation ---------------------------------------------------------------------------


def _compile(schema: dict[str, Any]) -> _Node:
    """Build the node tree and compile its CEL rules."""
    node = _Node(schema)
    node.properties = {k: _compile(v) for k, v in schema.get("properties", {}).items()}
    if isinstance(schema.get("items"), dict):
        node.items = _compile(schema["items"])
    if isinstance(schema.get("additionalProperties"), dict):
        node.additional = _compile(schema["additionalProperties"])
    node.rules = [_compile_rule(r) for r in schema.get("x-kubernetes-validations", [])]
    return node


def _compile_rule(entry: dict[str, Any]) -> _Rule:
    """Compile one rule; a transition rule is one that mentions oldSelf."""
    program = cel.compile(entry["rule"])
    expression = entry.get("messageExpression")
    return _Rule(
        source=entry["rule"],
        program=program,
        message=entry.get("message") or f"failed rule: {entry['rule']}",
        message_program=cel.compile(expression) if expression else None,
        field_path=entry.get("fieldPath", ""),
        reason=entry.get("reason", "FieldValueInvalid"),
        transition="oldSelf" in program.variables(),
        optional_old_self=bool(entry.get("optionalOldSelf")),
    )


def _to_json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Translate OpenAPI v3 (nullable, int-or-string) to draft 4 JSON Schema."""
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key.startswith("x-kubernetes-") or key == "nullable":
            continue
        if key == "properties":
            out[key] = {name: _to_json_schema(prop) for name, prop in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
            out[key] = _to_json_schema(value)
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [_to_json_schema(branch) for branch in value]
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


_Validator = jsonschema.validators.extend(jsonschema.Draft4Validator, {"required": _required})


def _is_date_time(value: object) -> bool:
    """RFC 3339 date-time, as kube-apiserver checks `format: date-time`."""
    if not isinstance(value, str):
        return True
    if not _DATE_TIME.match(value):
        return False
    datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    return True


# --- defaulting and pruning ----------------------------------------------------------------


def _default(value: Any, node: _Node) -> Any:
    """Apply defaults top-down, as apiextensions structural defaulting does."""
    if isinstance(value, dict) and node.properties:
        for name, prop in node.properties.items():
            if value.get(name, _MISSING) is None and not prop.schema.get("nullable"):
                del value[name]
            if name not in value and "default" in prop.schema:
                value[name] = copy.deepcopy(prop.schema["default"])
        for name, prop in node.properties.items():
            if name in value:
                value[name] = _default(value[name], prop)
    elif isinstance(value, dict) and node.additional:
        for name in value:
            value[name] = _default(value[name], node.additional)
    elif isinstance(value, list) and node.items:
        value[:] = [_default(item, node.items) for item in value]
    return value


def _prune(value: Any, node: _Node, path: str, dropped: list[str], *, root: bool = False) -> Any:
    """Drop unknown fields, recording their paths in `dropped`."""
    if isinstance(value, list) and node.items:
        return [_prune(item, node.items, f"{path}[{i}]", dropped) for i, item in enumerate(value)]
    if not isinstance(value, dict):
        return value
    kept_as_is = _ROOT_KEPT if root or node.schema.get("x-kubernetes-embedded-resource") else ()
    result = {}
    for name, item in value.items():
        child = node.properties.get(name) or node.additional
        if name in kept_as_is:
            result[name] = item
        elif child is not None:
            result[name] = _prune(item, child, _join(path, name, child is node.additional), dropped)
        elif node.preserve_unknown:
            result[name] = item
        else:
            dropped.append(_join(path, name, False))
    return result


# --- validation ----------------------------------------------------------------------------


def _join(path: str, key: str | int, map_key: bool) -> str:
    """Kubernetes field path: `.name` for fields, `[key]` for map keys and list indexes."""
    if isinstance(key, int) or map_key:
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _path(root: _Node, parts: list[str | int]) -> str:
    """Format an instance path, telling fields from map keys through the schema."""
    path, node = "", root
    for part in parts:
        if isinstance(part, int):
            path, node = _join(path, part, False), node.items or _Node({})
        elif part in node.properties:
            path, node = _join(path, part, False), node.properties[part]
        else:
            path, node = _join(path, part, True), node.additional or _Node({})
    return path


def _show(value: Any) -> str:
    """A value as kube-apiserver prints it in messages."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _json_type(value: Any) -> str:
    """JSON type name of a decoded value."""
    names = ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"))
    for kind, name in (*names, (dict, "object"), (list, "array")):
        if isinstance(value, kind):
            return name
    return "null"


def _openapi_error(error: ValidationError, path: str) -> FieldError:
    """The StatusCause of one OpenAPI keyword failure."""
    keyword, limit, value = error.validator, error.validator_value, error.instance
    body = f"{path} in body"
    invalid = f"Invalid value: {_show(value)}: {body}"
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
        supported = ", ".join(_show(v) for v in limit)
        return FieldError(
            "FieldValueNotSupported",
            path,
            f"Unsupported value: {_show(value)}: supported values: {supported}",
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
        "format": f"must be of type {limit}: {_show(value)}",
    }
    return FieldError("FieldValueInvalid", path, f"{invalid} {details.get(keyword, error.message)}")


def _list_errors(value: Any, node: _Node, path: str) -> list[FieldError]:
    """Duplicates in `x-kubernetes-list-type: map|set` lists, anywhere in `value`."""
    errors: list[FieldError] = []
    for _, item, child, child_path in _children(value, node, path):
        errors += _list_errors(item, child, child_path)
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
                FieldError("FieldValueDuplicate", f"{path}[{i}]", f"Duplicate value: {_show(key)}")
            )
        seen.append(key)
    return errors


def _children(value: Any, node: _Node, path: str) -> Iterator[tuple[str | int, Any, _Node, str]]:
    """(key, value, schema node, path) of each child of `value` the schema describes."""
    if isinstance(value, dict):
        for name, item in value.items():
            child = node.properties.get(name) or node.additional
            if child is not None:
                yield name, item, child, _join(path, name, child is node.additional)
    elif isinstance(value, list) and node.items:
        for i, item in enumerate(value):
            yield i, item, node.items, _join(path, i, False)


def _old_child(old: Any, node: _Node, value: Any, key: str | int) -> Any:
    """The old value correlated with a child, as transition rules see it: by key for objects
    and maps, by map keys (or value) for list-type map (set) lists, never for atomic lists."""
    if old is _MISSING:
        return _MISSING
    if isinstance(old, dict) and isinstance(key, str):
        return old.get(key, _MISSING)
    if not isinstance(old, list) or not isinstance(value, list) or not isinstance(key, int):
        return _MISSING
    item = value[key]
    list_type = node.schema.get("x-kubernetes-list-type")
    if list_type == "set":
        return item if item in old else _MISSING
    if list_type == "map" and isinstance(item, dict):
        keys = node.schema.get("x-kubernetes-list-map-keys", [])
        for candidate in old:
            if isinstance(candidate, dict) and all(candidate.get(k) == item.get(k) for k in keys):
                return candidate
    return _MISSING


def _cel_errors(value: Any, old: Any, node: _Node, path: str) -> Iterator[FieldError]:
    """Evaluate the rules of `node` on `value`, then of its children, recursively."""
    for rule in node.rules:
        error = _evaluate(rule, value, old, node, path)
        if error is not None:
            yield error
    for key, item, child, child_path in _children(value, node, path):
        yield from _cel_errors(item, _old_child(old, node, value, key), child, child_path)


def _evaluate(rule: _Rule, value: Any, old: Any, node: _Node, path: str) -> FieldError | None:
    """One rule at one node; None when it holds or does not apply."""
    variables = {"self": value}
    if rule.transition:
        if old is _MISSING and not rule.optional_old_self:
            return None
        if rule.optional_old_self:
            old = cel.OptionalValue.none() if old is _MISSING else cel.OptionalValue.of(old)
        variables["oldSelf"] = old
    context = cel.Context(variables=variables, functions=cel.stdlib.STDLIB_FUNCTIONS)
    field_path = (path + rule.field_path).lstrip(".")
    try:
        result = rule.program.execute(context)
    except Exception as exc:  # a CEL runtime error rejects the object, as in Kubernetes
        detail = f"{rule.source}: {exc}"
        return FieldError(
            "FieldValueInvalid", field_path, f'Invalid value: "{node.type_name}": {detail}'
        )
    if result is True:
        return None
    return _rule_error(rule, _message(rule, context), field_path, node.type_name)


def _message(rule: _Rule, context: Any) -> str:
    """The rule's messageExpression result, else its message."""
    if rule.message_program is not None:
        try:
            text = rule.message_program.execute(context)
        except Exception:  # kube-apiserver falls back to message too
            return rule.message
        if isinstance(text, str) and text.strip():
            return text
    return rule.message


def _rule_error(rule: _Rule, message: str, path: str, type_name: str) -> FieldError:
    """The StatusCause of a failed rule, by its reason."""
    prefixes = {
        "FieldValueForbidden": "Forbidden: ",
        "FieldValueRequired": "Required value: ",
        "FieldValueDuplicate": "Duplicate value: ",
    }
    prefix = prefixes.get(rule.reason, f'Invalid value: "{type_name}": ')
    reason = rule.reason if rule.reason in prefixes else "FieldValueInvalid"
    return FieldError(reason, path, prefix + message)
