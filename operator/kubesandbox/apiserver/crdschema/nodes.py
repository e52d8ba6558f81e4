"""The compiled schema tree (pure): each node of an openAPIV3Schema with its children and its
compiled CEL rules, and the Kubernetes field paths that name its values."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import cel

MISSING: Any = object()  # a value absent from the object (not the same as null)


@dataclass(frozen=True)
class FieldError:
    """One rejected field, as a kube-apiserver StatusCause."""

    type: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


@dataclass(frozen=True)
class Rule:
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
class Node:
    """A schema node with its children and compiled rules."""

    schema: dict[str, Any]
    properties: dict[str, Node] = field(default_factory=dict)
    items: Node | None = None
    additional: Node | None = None
    rules: list[Rule] = field(default_factory=list)
    transitions: bool = False
    """Whether a rule of this node or below reads `oldSelf` (those run on unchanged values)."""

    @property
    def preserve_unknown(self) -> bool:
        """Whether fields the schema does not list are kept."""
        return bool(self.schema.get("x-kubernetes-preserve-unknown-fields"))

    @property
    def type_name(self) -> str:
        """The declared type, as CEL errors show it ("" for int-or-string)."""
        return str(self.schema.get("type", ""))


def compile_schema(schema: dict[str, Any]) -> Node:
    """Build the node tree and compile its CEL rules."""
    node = Node(schema)
    node.properties = {k: compile_schema(v) for k, v in schema.get("properties", {}).items()}
    if isinstance(schema.get("items"), dict):
        node.items = compile_schema(schema["items"])
    if isinstance(schema.get("additionalProperties"), dict):
        node.additional = compile_schema(schema["additionalProperties"])
    node.rules = [_compile_rule(r) for r in schema.get("x-kubernetes-validations", [])]
    below = [*node.properties.values(), node.items, node.additional]
    node.transitions = any(r.transition for r in node.rules) or any(
        child.transitions for child in below if child is not None
    )
    return node


def _compile_rule(entry: dict[str, Any]) -> Rule:
    """Compile one rule; a transition rule is one that mentions oldSelf."""
    program = cel.compile(entry["rule"])
    expression = entry.get("messageExpression")
    return Rule(
        source=entry["rule"],
        program=program,
        message=entry.get("message") or f"failed rule: {entry['rule']}",
        message_program=cel.compile(expression) if expression else None,
        field_path=entry.get("fieldPath", ""),
        reason=entry.get("reason", "FieldValueInvalid"),
        transition="oldSelf" in program.variables(),
        optional_old_self=bool(entry.get("optionalOldSelf")),
    )


def join(path: str, key: str | int, map_key: bool) -> str:
    """Kubernetes field path: `.name` for fields, `[key]` for map keys and list indexes."""
    if isinstance(key, int) or map_key:
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def children(value: Any, node: Node, path: str) -> Iterator[tuple[str | int, Any, Node, str]]:
    """(key, value, schema node, path) of each child of `value` the schema describes."""
    if isinstance(value, dict):
        for name, item in value.items():
            child = node.properties.get(name) or node.additional
            if child is not None:
                yield name, item, child, join(path, name, child is node.additional)
    elif isinstance(value, list) and node.items:
        for i, item in enumerate(value):
            yield i, item, node.items, join(path, i, False)
