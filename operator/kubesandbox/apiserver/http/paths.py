"""Request paths and verbs of the Kubernetes REST API, parsed (pure)."""

from __future__ import annotations

from dataclasses import dataclass

_NAMESPACE_SUBRESOURCES = ("status", "finalize")


@dataclass(frozen=True)
class Target:
    """What a resource request addresses."""

    group: str
    version: str
    plural: str
    namespace: str | None = None  # None: cluster-scoped or across all namespaces
    name: str = ""
    subresource: str = ""


def parse_resource_path(path: str) -> Target | None:
    """`/api/v1/namespaces/ns/pods/x/log` -> Target; None when not a resource path."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 3 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 4 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    namespace = None
    if (
        rest[0] == "namespaces"
        and len(rest) >= 3
        and not (len(rest) == 3 and rest[2] in _NAMESPACE_SUBRESOURCES)
    ):
        namespace, rest = rest[1], rest[2:]
    if len(rest) > 3:
        return None
    return Target(group, version, rest[0], namespace, *rest[1:])


def verb(method: str, target: Target, watch: bool) -> str:
    """The Kubernetes verb of a request (as RBAC and the request log name it)."""
    if method == "GET":
        if target.name:
            return "get"
        return "watch" if watch else "list"
    if method == "DELETE" and not target.name:
        return "deletecollection"
    return {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(
        method, method.lower()
    )
