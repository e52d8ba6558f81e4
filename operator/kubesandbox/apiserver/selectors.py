"""Label and field selectors: parsing the query strings and matching objects."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kubesandbox.apiserver.errors import bad_request

_SET_OP = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s*(?:(notin|in)\s*\(([^)]*)\))?\s*$")
_EQ_OP = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s*(==|!=|=)\s*([A-Za-z0-9_.-]*)\s*$")


@dataclass(frozen=True)
class Requirement:
    """One label requirement: `key op values` with op in, notin, exists, !exists."""

    key: str
    op: str
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether a label set satisfies this requirement."""
        if self.op == "exists":
            return self.key in labels
        if self.op == "!exists":
            return self.key not in labels
        if self.op == "in":
            return labels.get(self.key) in self.values
        return labels.get(self.key) not in self.values


def _split_top(text: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts, depth, current = [], 0, ""
    for ch in text:
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [p for p in parts if p.strip()]


def parse_label_selector(text: str) -> list[Requirement]:
    """Parse `a=b,c!=d,e in (x,y),f notin (z),g,!h`; 400 on a syntax error."""
    out = []
    for part in _split_top(text):
        if m := _EQ_OP.match(part):
            key, op, value = m.groups()
            out.append(Requirement(key, "notin" if op == "!=" else "in", frozenset([value])))
        elif m := _SET_OP.match(part):
            neg, key, op, values = m.groups()
            if op:
                if neg:
                    raise bad_request(f"unable to parse requirement: {part!r}")
                vals = frozenset(v.strip() for v in values.split(",") if v.strip())
                out.append(Requirement(key, op, vals))
            else:
                out.append(Requirement(key, "!exists" if neg else "exists"))
        else:
            raise bad_request(f"unable to parse requirement: found '{part.strip()}'")
    return out


def label_values(reqs: list[Requirement]) -> dict[str, frozenset[str]]:
    """The `=` and `in` requirements as label -> allowed values (what the store's label
    index can look up; the other requirements are checked on each candidate)."""
    out: dict[str, frozenset[str]] = {}
    for req in reqs:
        if req.op == "in":
            out[req.key] = out[req.key] & req.values if req.key in out else req.values
    return out


def selector_from_label_selector(selector: Mapping[str, Any]) -> list[Requirement]:
    """Requirements of a `LabelSelector` object (matchLabels + matchExpressions)."""
    out = [
        Requirement(k, "in", frozenset([v])) for k, v in (selector.get("matchLabels") or {}).items()
    ]
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!exists"}
    for expr in selector.get("matchExpressions") or ():
        out.append(
            Requirement(expr["key"], ops[expr["operator"]], frozenset(expr.get("values") or ()))
        )
    return out


def format_label_selector(reqs: list[Requirement]) -> str:
    """The query-string form of requirements (for the scale subresource's selector)."""
    parts = []
    for r in reqs:
        if r.op == "exists":
            parts.append(r.key)
        elif r.op == "!exists":
            parts.append(f"!{r.key}")
        elif r.op == "in" and len(r.values) == 1:
            parts.append(f"{r.key}={next(iter(r.values))}")
        else:
            parts.append(f"{r.key} {r.op} ({','.join(sorted(r.values))})")
    return ",".join(parts)


# Field selectors kube-apiserver accepts per resource key, beyond metadata.name/namespace.
_FIELDS: dict[str, tuple[str, ...]] = {
    "pods": (
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ),
    "events": (
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ),
    "secrets": ("type",),
    "nodes": ("spec.unschedulable",),
    "namespaces": ("status.phase",),
    "replicasets": ("status.replicas",),
}


@dataclass(frozen=True)
class FieldRequirement:
    """One field requirement: `path = value` or `path != value`."""

    path: str
    value: str
    equal: bool

    def matches(self, obj: Mapping[str, Any]) -> bool:
        """Whether the object's field (missing reads as "") satisfies this requirement."""
        return (field_value(obj, self.path) == self.value) == self.equal


def field_value(obj: Mapping[str, Any], path: str) -> str:
    """A field as a selector sees it: a string, "" when absent."""
    node: Any = obj
    for part in path.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    if isinstance(node, bool):
        return str(node).lower()
    if path == "source" and isinstance(node, Mapping):
        return str(node.get("component", ""))
    return "" if node is None else str(node)


def parse_field_selector(text: str, resource_key: str) -> list[FieldRequirement]:
    """Parse `a=b,c!=d` for a resource; 400 for a field the real server does not index."""
    allowed = ("metadata.name", "metadata.namespace", *_FIELDS.get(resource_key, ()))
    out = []
    for part in _split_top(text):
        m = re.match(r"^\s*([A-Za-z0-9_.]+)\s*(==|!=|=)\s*(.*?)\s*$", part)
        if not m:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        path, op, value = m.groups()
        if path not in allowed:
            raise bad_request(f"field label not supported: {path}")
        out.append(FieldRequirement(path, value, op != "!="))
    return out


ObjectFilter = Callable[[Mapping[str, Any]], bool]


def object_filter(labels: list[Requirement], fields: list[FieldRequirement]) -> ObjectFilter | None:
    """A predicate over objects for both selectors; None when nothing is selected on."""
    if not labels and not fields:
        return None

    def match(obj: Mapping[str, Any]) -> bool:
        obj_labels = obj.get("metadata", {}).get("labels") or {}
        return all(r.matches(obj_labels) for r in labels) and all(f.matches(obj) for f in fields)

    return match
