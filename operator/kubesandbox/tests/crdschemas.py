"""Schemas for the CRDSchema tests, and the errors CRDSchema finds in an object."""

from __future__ import annotations

from typing import Any

from kubesandbox.apiserver.crdschema import CRDSchema


def obj_schema(properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """An object schema with `properties` and other keywords (default, required...)."""
    return {"type": "object", "properties": properties, **extra}


def errors_of(schema: dict[str, Any], obj: Any, old: Any = None) -> list[tuple[str, str, str]]:
    """(type, field, message) of each error CRDSchema finds in `obj` (an update of `old`)."""
    return [(e.type, e.field, e.message) for e in CRDSchema(schema).validate(obj, old)]
