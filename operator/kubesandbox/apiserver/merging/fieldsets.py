"""Field sets (pure): an object's member paths in FieldsV1 tokens (`f:spec`,
`k:{"name":"c"}`, `v:"x"`, `i:0`), read through its schema, and their FieldsV1 trie encoding.

Maps are granular per key, lists by `x-kubernetes-list-type` (`map` items by their keys,
`set` items by value, `atomic` lists as one value); unknown structure is deduced (maps
granular, lists atomic), as structured-merge-diff does.
"""

from __future__ import annotations

import json
from typing import Any

from kubesandbox.apiserver import k8s_schemas
from kubesandbox.apiserver.k8s_schemas import ListType, Schema
from kubesandbox.objects import Obj

Path = tuple[str, ...]

# Fields never tracked in managedFields (kube-apiserver's stripMetaManager).
_STRIPPED_TOP = frozenset({"f:apiVersion", "f:kind"})
_STRIPPED_METADATA = frozenset(
    f"f:{name}"
    for name in (
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "clusterName",
        "generation",
        "managedFields",
        "resourceVersion",
    )
)
_ITEM = "<list item>"  # the recorded "value" of a list item member: items are only added/removed
_TOKEN_ORDER = {".": 0, "f": 1, "k": 2, "v": 3, "i": 4}


def field_members(value: Any, schema: Schema | None) -> dict[Path, Any]:
    """Every member path of an object with its value (`_ITEM` for list items), untracked out."""
    members: dict[Path, Any] = {}
    _collect(value, schema, (), members)
    return {p: v for p, v in members.items() if not _stripped(p)}


def _collect(value: Any, schema: Schema | None, path: Path, out: dict[Path, Any]) -> None:
    if isinstance(value, dict) and not k8s_schemas.is_atomic_map(schema):
        for name, child in value.items():
            _collect(child, k8s_schemas.property_schema(schema, name), (*path, f"f:{name}"), out)
        return
    list_type, keys = list_type_of(schema)
    if isinstance(value, list) and list_type != "atomic":
        items = k8s_schemas.items_schema(schema)
        for item in value:
            item_path = (*path, item_token(item, list_type, keys))
            out[item_path] = _ITEM
            if list_type == "map" and isinstance(item, dict):
                _collect(item, items, item_path, out)
        return
    if path:
        out[path] = value


def list_type_of(schema: Schema | None) -> tuple[ListType, list[str]]:
    """The list type and map keys of a list schema; unknown lists are atomic."""
    return k8s_schemas.list_type(schema) if schema is not None else ("atomic", [])


def item_token(item: Any, list_type: ListType, keys: list[str]) -> str:
    """The token of a list item: `k:` with its map keys, else `v:` with its value."""
    if list_type == "map" and isinstance(item, dict):
        return "k:" + canonical_json({k: item[k] for k in keys if k in item})
    return "v:" + canonical_json(item)


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces, as tokens embed values."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def display_token(token: str) -> str:
    """A token as kube-apiserver prints a field: `.spec`, `[name="c"]`, `[="x"]`, `[0]`."""
    kind, text = token[0], token[2:]
    if kind == "f":
        return f".{text}"
    if kind == "k":
        fields = json.loads(text)
        return "[" + ",".join(f"{k}={canonical_json(v)}" for k, v in fields.items()) + "]"
    return f"[={text}]" if kind == "v" else f"[{text}]"


def _stripped(path: Path) -> bool:
    head = path[0]
    return head in _STRIPPED_TOP or (
        head == "f:metadata" and len(path) > 1 and path[1] in _STRIPPED_METADATA
    )


def to_fields_v1(paths: set[Path]) -> Obj:
    """Encode a field set as a FieldsV1 trie ('.' marks a member that also has children)."""
    root: Obj = {}
    for path in paths:
        node = root
        for token in path:
            node = node.setdefault(token, {})
    for path in paths:
        node = root
        for token in path:
            node = node[token]
        if node:
            node["."] = {}
    return _sorted_trie(root)


def _sorted_trie(node: Obj) -> Obj:
    ordered = sorted(node, key=lambda t: (_TOKEN_ORDER.get(t[0], 9), t))
    return {token: _sorted_trie(node[token]) for token in ordered}


def from_fields_v1(fields: Obj, prefix: Path = ()) -> set[Path]:
    """Decode a FieldsV1 trie into its member paths."""
    members: set[Path] = set()
    for token, child in fields.items():
        if token == ".":
            members.add(prefix)
        elif child:
            members |= from_fields_v1(child, (*prefix, token))
        else:
            members.add((*prefix, token))
    return members
