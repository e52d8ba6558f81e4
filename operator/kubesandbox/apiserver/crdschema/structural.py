"""Structural defaulting and pruning (pure), as apiextensions applies them on every write."""

from __future__ import annotations

import copy
from typing import Any

from kubesandbox.apiserver.crdschema.nodes import MISSING, Node, join

_ROOT_KEPT = ("apiVersion", "kind", "metadata")


def default(value: Any, node: Node) -> Any:
    """Apply defaults top-down, as apiextensions structural defaulting does."""
    if isinstance(value, dict) and node.properties:
        for name, prop in node.properties.items():
            if value.get(name, MISSING) is None and not prop.schema.get("nullable"):
                del value[name]
            if name not in value and "default" in prop.schema:
                value[name] = copy.deepcopy(prop.schema["default"])
        for name, prop in node.properties.items():
            if name in value:
                value[name] = default(value[name], prop)
    elif isinstance(value, dict) and node.additional:
        for name in value:
            value[name] = default(value[name], node.additional)
    elif isinstance(value, list) and node.items:
        value[:] = [default(item, node.items) for item in value]
    return value


def prune(value: Any, node: Node, path: str, dropped: list[str], *, root: bool = False) -> Any:
    """Drop unknown fields, recording their paths in `dropped`."""
    if isinstance(value, list) and node.items:
        return [prune(item, node.items, f"{path}[{i}]", dropped) for i, item in enumerate(value)]
    if not isinstance(value, dict):
        return value
    kept_as_is = _ROOT_KEPT if root or node.schema.get("x-kubernetes-embedded-resource") else ()
    result = {}
    for name, item in value.items():
        child = node.properties.get(name) or node.additional
        if name in kept_as_is:
            result[name] = item
        elif child is not None:
            result[name] = prune(item, child, join(path, name, child is node.additional), dropped)
        elif node.preserve_unknown:
            result[name] = item
        else:
            dropped.append(join(path, name, False))
    return result
