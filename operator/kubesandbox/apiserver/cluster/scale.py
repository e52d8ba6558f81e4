"""The scale subresource (pure): an object's autoscaling/v1 Scale view, and replicas set back."""

from __future__ import annotations

import copy
from typing import Any

from kubesandbox.apiserver.errors import StatusError
from kubesandbox.apiserver.registry import ResourceType
from kubesandbox.apiserver.selectors import format_label_selector, selector_from_label_selector
from kubesandbox.objects import Obj


def _get_path(obj: Obj, path: str) -> Any:
    node: Any = obj
    for part in filter(None, path.split(".")):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _set_path(obj: Obj, path: str, value: Any) -> None:
    parts = [p for p in path.split(".") if p]
    node = obj
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def to_scale(rt: ResourceType, obj: Obj) -> Obj:
    """The autoscaling/v1 Scale view of an object; 404 for a type without scale."""
    paths = rt.scale
    if paths is None:
        raise StatusError(404, "the server could not find the requested resource")
    selector = _get_path(obj, paths.label_selector) if paths.label_selector else None
    if isinstance(selector, dict):
        selector = format_label_selector(selector_from_label_selector(selector))
    meta = obj["metadata"]
    status: Obj = {"replicas": _get_path(obj, paths.status_replicas) or 0}
    if selector:
        status["selector"] = selector
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in meta
        },
        "spec": {"replicas": _get_path(obj, paths.spec_replicas) or 0},
        "status": status,
    }


def with_replicas(rt: ResourceType, obj: Obj, replicas: Any) -> Obj:
    """A copy of the object with the replicas of a Scale written at the type's spec path."""
    if rt.scale is None:
        raise StatusError(404, "the server could not find the requested resource")
    new = copy.deepcopy(obj)
    _set_path(new, rt.scale.spec_replicas, replicas)
    return new
