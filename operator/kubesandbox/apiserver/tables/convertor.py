"""Server-side printing: `meta.k8s.io/v1` Tables as kube-apiserver builds them for `kubectl get`.

Built-in kinds use their `printers`; custom resources the served version's
`additionalPrinterColumns` (default: Age).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from kubesandbox.apiserver.tables.columns import AGE, NAME, Cells, Column, Printer, column
from kubesandbox.apiserver.tables.format import age, field_at, name_of
from kubesandbox.apiserver.tables.printers import builtin_printer
from kubesandbox.objects import Obj, parse_time


def _json_path(obj: Any, path: str) -> Any:
    """Evaluate a simple JSONPath (`.status.phase`, `.spec.items[0].name`); None when missing."""
    for step in path.strip().strip("{}").lstrip("$").split(".")[1:]:
        name, _, index = step.partition("[")
        if name:
            obj = obj.get(name) if isinstance(obj, dict) else None
        if index:
            position = int(index.rstrip("]")) if index.rstrip("]").lstrip("-").isdigit() else None
            fits = (
                isinstance(obj, list) and position is not None and -len(obj) <= position < len(obj)
            )
            obj = obj[position] if fits else None
    return obj


def _cell(type_: str, value: Any, now: datetime) -> Any:
    """A printer column value as the apiextensions table convertor types it."""
    if value is None:
        return None
    if type_ == "string":
        return (
            value
            if isinstance(value, str)
            else json.dumps(value, separators=(",", ":"), sort_keys=True)
        )
    if type_ == "integer" and isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    if type_ == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if type_ == "boolean" and isinstance(value, bool):
        return value
    if type_ == "date" and isinstance(value, str):
        return "<invalid>" if parse_time(value) is None else age(value, now)
    return None


def crd_printer(crd: Obj, version: str | None = None) -> Printer:
    """The printer of a CRD's served version (`version`, else the storage version)."""
    versions = field_at(crd, "spec", "versions") or []
    served = next(
        (v for v in versions if v.get("name") == version or (version is None and v.get("storage"))),
        versions[0] if versions else {},
    )
    specs = served.get("additionalPrinterColumns") or [
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp",
         "description": column(*AGE).description},
    ]  # fmt: skip
    columns = [
        Column(
            c["name"],
            c.get("type", "string"),
            c.get("description")
            or f"Custom resource definition column (in JSONPath format): {c['jsonPath']}",
            c.get("priority", 0),
            c.get("format", ""),
        )
        for c in specs
    ]

    def cells(obj: Obj, now: datetime) -> Cells:
        values = [
            _cell(col.type, _json_path(obj, c["jsonPath"]), now)
            for col, c in zip(columns, specs, strict=True)
        ]
        return [name_of(obj), *values]

    return Printer([column(*NAME), *columns], cells)


def _row_object(obj: Obj, include_object: str) -> Obj | None:
    if include_object == "None":
        return None
    if include_object == "Object":
        return obj
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata", {}),
    }


_POD_ROW_CONDITIONS = {
    "Succeeded": [{"type": "Completed", "status": "True", "reason": "Succeeded",
                   "message": "The pod has completed successfully."}],
    "Failed": [{"type": "Completed", "status": "True", "reason": "Failed",
                "message": "The pod failed."}],
}  # fmt: skip


def to_table(
    group: str,
    plural: str,
    objects: list[Obj],
    crd: Obj | None,
    include_object: str = "Metadata",
    *,
    version: str | None = None,
    resource_version: str = "",
    now: datetime | None = None,
) -> Obj:
    """A `meta.k8s.io/v1` Table; rows carry PartialObjectMetadata, the object or nothing."""
    printer = crd_printer(crd, version) if crd else builtin_printer(group, plural)
    moment = now or datetime.now(UTC)
    rows = []
    for obj in objects:
        row: Obj = {"cells": printer.cells(obj, moment)}
        if (
            plural == "pods"
            and not group
            and (found := _POD_ROW_CONDITIONS.get(field_at(obj, "status", "phase")))
        ):
            row["conditions"] = found
        if (shown := _row_object(obj, include_object)) is not None:
            row["object"] = shown
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": [c.definition() for c in printer.columns],
        "rows": rows,
    }
