"""Building blocks shared by every API model: the base model, CEL rules, quantities."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, WithJsonSchema
from pydantic.alias_generators import to_camel

GROUP = "bigmodel.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
JOB_KIND, JOB_PLURAL = "BigModelJob", "bigmodeljobs"
SERVICE_KIND, SERVICE_PLURAL = "BigModelService", "bigmodelservices"

# The pattern kube-apiserver publishes for resource.Quantity.
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
PERCENT_PATTERN = r"^[0-9]+%$"
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
ENV_NAME_PATTERN = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"


class ApiModel(BaseModel):
    """Base of every model: camelCase JSON names, attribute docstrings as descriptions."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        use_attribute_docstrings=True,
    )


def rule(
    expression: str, message: str, *, field_path: str | None = None, reason: str | None = None
) -> dict[str, str]:
    """One CEL `x-kubernetes-validations` entry."""
    entry = {"rule": expression, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    if reason:
        entry["reason"] = reason
    return entry


def validations(*rules: dict[str, str]) -> dict[str, Any]:
    """JSON-schema extra carrying CEL rules, for `ConfigDict` or `Field`."""
    return {"x-kubernetes-validations": list(rules)}


def immutable(field: str) -> dict[str, str]:
    """Transition rule, declared on the parent object: `field` may be neither set, unset nor
    changed after creation."""
    return rule(
        f"has(self.{field}) == has(oldSelf.{field})"
        f" && (!has(self.{field}) || self.{field} == oldSelf.{field})",
        f"{field} is immutable",
        field_path=f".{field}",
    )


def list_map(*keys: str) -> dict[str, Any]:
    """JSON-schema extra of a list merged by `keys` (server-side apply, duplicate checks)."""
    return {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": list(keys)}


def defaulted(model: type[BaseModel]) -> Any:
    """Field of a nested settings object that the API server defaults to `{}` (and so fills
    with the object's own defaults), as the model does."""
    return Field(default_factory=model, json_schema_extra={"default": {}})


LIST_SET: dict[str, Any] = {"x-kubernetes-list-type": "set"}

# Free-form object kept as written (Kubernetes objects we do not model field by field).
FREE_FORM: dict[str, Any] = {"x-kubernetes-preserve-unknown-fields": True}


def _int_or_string_validator(pattern: str, hint: str) -> PlainValidator:
    """Accepts an integer or a string matching `pattern`, as kube-apiserver does."""
    compiled = re.compile(pattern)

    def check(value: Any) -> int | str:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and compiled.match(value):
            return value
        raise ValueError(f"must be {hint}")

    return PlainValidator(check)


def _int_or_string_schema(pattern: str) -> WithJsonSchema:
    """The structural schema of an int-or-string whose strings match `pattern`."""
    return WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": pattern,
            "x-kubernetes-int-or-string": True,
        }
    )


Quantity = Annotated[
    int | str,
    _int_or_string_validator(QUANTITY_PATTERN, "a quantity like 500m, 2Gi or 4"),
    _int_or_string_schema(QUANTITY_PATTERN),
]
"""A Kubernetes resource quantity: an integer or a string like `500m` or `2Gi`."""

IntOrPercent = Annotated[
    int | str,
    _int_or_string_validator(PERCENT_PATTERN, "an integer or a percentage like 25%"),
    _int_or_string_schema(PERCENT_PATTERN),
]
"""An absolute number or a percentage string, as in a Deployment's rolling update."""
