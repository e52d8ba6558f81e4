"""Table columns: their definitions, described from the Kubernetes schemas, and printers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kubesandbox.apiserver import k8s_schemas
from kubesandbox.objects import Obj

Cells = list[Any]


@dataclass(frozen=True)
class Column:
    """A Table column definition."""

    name: str
    type: str = "string"
    description: str = ""
    priority: int = 0
    format: str = ""

    def definition(self) -> Obj:
        """The column as `columnDefinitions` carries it."""
        return {
            "name": self.name,
            "type": self.type,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        }


@dataclass(frozen=True)
class Printer:
    """Columns and the function computing one object's cells."""

    columns: list[Column]
    cells: Callable[[Obj, datetime], Cells]


def column(
    name: str, doc: str, priority: int = 0, type_: str = "string", format_: str = ""
) -> Column:
    """A column; a `doc` naming a schema field (`api.core.v1.PodSpec.nodeName`) is looked up."""
    if doc.startswith(("api.", "apimachinery.")):
        definition, _, field = doc.rpartition(".")
        properties = k8s_schemas.definitions().get(f"io.k8s.{definition}", {}).get("properties", {})
        doc = properties.get(field, {}).get("description", "")
    return Column(name, type_, doc, priority, format_)


PrinterSpec = tuple[list[tuple[Any, ...]], Callable[[Obj, datetime], Cells]]
"""A printer as written down: its columns (the arguments of `column`) and its cells."""

META = "apimachinery.pkg.apis.meta.v1.ObjectMeta"
# (name, description or schema field, priority, type, format): the arguments of `column`
NAME = ("Name", f"{META}.name", 0, "string", "name")
AGE = ("Age", f"{META}.creationTimestamp")
