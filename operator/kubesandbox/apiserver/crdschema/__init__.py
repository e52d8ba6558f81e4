"""Custom resources treated as kube-apiserver treats them: structural defaulting, pruning,
OpenAPI v3 validation (through jsonschema) and CEL `x-kubernetes-validations` (through the
`cel` package). Pure: no I/O.

Validation ratcheting on update, coarser than kube-apiserver's: a top-level field (`spec`,
`status`, ...) equal to its old value is not validated again against OpenAPI, and an unchanged
subtree's CEL rules are not evaluated (transition rules always are). A status write thus costs
no validation of the spec.

Known gaps versus kube-apiserver: OpenAPI errors of unchanged values inside a changed top-level
field still count, no CEL cost limits, the CEL Kubernetes library (quantity(), url(),
isSorted(), ...) and `.?` optional syntax are not available, and date-time fields reach CEL as
strings, not timestamps."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError

from kubesandbox.apiserver.crdschema.nodes import MISSING, FieldError, compile_schema
from kubesandbox.apiserver.crdschema.rules import cel_errors
from kubesandbox.apiserver.crdschema.structural import default, prune
from kubesandbox.apiserver.crdschema.validation import (
    Validator,
    field_path,
    is_date_time,
    list_errors,
    openapi_error,
    to_json_schema,
)

__all__ = ["CRDSchema", "FieldError"]

_BLOCKED_CEL = (
    "some validation rules were not checked because the object was invalid; "
    "correct the existing errors to complete validation"
)


_CEL_METADATA = ("name", "generateName")


def _cel_view(obj: dict[str, Any]) -> dict[str, Any]:
    """The object as CEL rules see it: of its metadata only `name` and `generateName`."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return obj
    return {**obj, "metadata": {k: meta[k] for k in _CEL_METADATA if k in meta}}


class CRDSchema:
    """One version's openAPIV3Schema, compiled once; applies it to objects."""

    def __init__(self, openapi_v3_schema: dict[str, Any]) -> None:
        self._root = compile_schema(copy.deepcopy(openapi_v3_schema))
        checker = jsonschema.FormatChecker(formats=())
        checker.checks("date-time", raises=ValueError)(is_date_time)
        json_schema = to_json_schema(openapi_v3_schema)
        self._validator = Validator(json_schema, format_checker=checker)
        self._fields: dict[str, Any] = json_schema.get("properties", {})
        # the root's own keywords (type, required, ...), its fields accepting anything
        top = {**json_schema, "properties": {key: {} for key in self._fields}}
        self._top = Validator(top, format_checker=checker)

    def default(self, obj: dict[str, Any]) -> dict[str, Any]:
        """A copy of `obj` with schema defaults applied and non-nullable nulls dropped."""
        result: dict[str, Any] = default(copy.deepcopy(obj), self._root)
        return result

    def prune(self, obj: dict[str, Any]) -> dict[str, Any]:
        """A copy of `obj` without the fields the schema does not know."""
        result: dict[str, Any] = prune(obj, self._root, "", [], root=True)
        return result

    def unknown_fields(self, obj: dict[str, Any]) -> list[str]:
        """Paths that `prune` drops (for fieldValidation=Strict|Warn)."""
        dropped: list[str] = []
        prune(obj, self._root, "", dropped, root=True)
        return dropped

    def validate(self, obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[FieldError]:
        """Every error of `obj` (an update of `old` when given, ratcheted); empty when valid."""
        if old is None:
            errors = [self._field_error(e) for e in self._validator.iter_errors(obj)]
            errors += list_errors(obj, self._root, "")
        else:
            changed = {k: v for k, v in obj.items() if k not in old or old[k] != v}
            found = list(self._top.iter_errors(obj))
            for key in changed.keys() & self._fields.keys():
                found += self._validator.descend(changed[key], self._fields[key], path=key)
            errors = [self._field_error(e) for e in found]
            errors += list_errors(changed, self._root, "")
        if any(e.type == "FieldValueTypeInvalid" for e in errors):
            return [*errors, FieldError("FieldValueInvalid", "", _BLOCKED_CEL)]
        old_root = MISSING if old is None else _cel_view(old)
        return errors + list(cel_errors(_cel_view(obj), old_root, self._root, ""))

    def _field_error(self, error: ValidationError) -> FieldError:
        """Map a jsonschema error to the cause kube-apiserver reports."""
        path = field_path(self._root, list(error.absolute_path))
        return openapi_error(error, path)
