"""Server-side apply and `metadata.managedFields` tracking, after structured-merge-diff.

An applied configuration merges into the live object by its schema: maps per key, lists by
`x-kubernetes-list-type` (`map` by its keys, `set` as a union, `atomic` replaced). Fields are
named as in `fieldsets`; who owns which is kept by `managedfields`.

No-op writes: when an apply or update changes nothing but the acting manager's timestamp,
the returned object keeps live's `managedFields` verbatim (kube-apiserver's
IgnoreManagedFieldsTimestampsTransformer), so the server decides "no change" with
`result == live`: then it must neither bump `resourceVersion` nor emit a watch event. So call
these before setting server-owned fields (resourceVersion, generation) on the new object.

Callers reset what the endpoint may not change before calling (for example `status` on the
main resource of a kind with a status subresource), as kube-apiserver's strategies do.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime
from typing import Any

from kubesandbox.apiserver import k8s_schemas
from kubesandbox.apiserver.k8s_schemas import Schema
from kubesandbox.apiserver.merging.fieldsets import Path, field_members, item_token, list_type_of
from kubesandbox.apiserver.merging.managedfields import (
    ApplyConflict,
    Conflict,
    Entry,
    decode,
    default_field_manager,
    entry_of,
    finish,
    managed_fields,
    requested_managed_fields,
    transfer,
    without_managed,
)
from kubesandbox.objects import Obj

__all__ = ["ApplyConflict", "ApplyInvalid", "Conflict", "default_field_manager"]


class ApplyInvalid(ValueError):
    """An apply request the API server rejects with 400."""


def server_side_apply(
    api_version: str,
    kind: str,
    live: Obj | None,
    applied: Obj,
    manager: str,
    force: bool,
    schema: Schema | None = None,
    *,
    now: datetime | None = None,
) -> Obj:
    """Apply `applied` for `manager` to `live` (None: create); raises ApplyConflict."""
    if (applied.get("metadata") or {}).get("managedFields") is not None:
        raise ApplyInvalid("metadata.managedFields must be nil")
    root = k8s_schemas.object_schema(api_version, kind, schema)
    entries = decode(managed_fields(live))
    body = without_managed(live or {})
    merged = _merge(body, applied, root)
    applied_set = set(field_members(applied, root))
    mine = entry_of(entries, Entry(manager, "Apply", api_version))
    last, mine.fields, mine.api_version = mine.fields, applied_set, api_version
    owned = {path[:i] for e in entries for path in e.fields for i in range(1, len(path) + 1)}
    dropped = [p for p in sorted(last - applied_set, key=len) if p not in owned]
    dropped = [p for p in dropped if not _is_item_key(p)]
    if dropped:
        merged = copy.deepcopy(merged)  # it shares live's values: remove from a copy
        for path in dropped:
            _remove(merged, path)
    changed, removed = _diff(field_members(body, root), field_members(merged, root))
    transfer(entries, mine.key, changed, removed, force)
    return finish(live, merged, entries, mine, now)


def track_update(
    api_version: str,
    kind: str,
    old: Obj | None,
    new: Obj,
    manager: str,
    operation: str = "Update",
    subresource: str = "",
    schema: Schema | None = None,
    *,
    now: datetime | None = None,
) -> Obj:
    """`new` with managedFields after a create/update/patch by `manager` (ownership moves)."""
    root = k8s_schemas.object_schema(api_version, kind, schema)
    entries = decode(requested_managed_fields(old, new, subresource))
    body = without_managed(new)
    changed, removed = _diff(
        field_members(without_managed(old or {}), root), field_members(body, root)
    )
    mine = entry_of(entries, Entry(manager, operation, api_version, subresource))
    transfer(entries, mine.key, changed, removed, force=True)
    mine.fields = (mine.fields - removed) | changed
    return finish(old, body, entries, mine, now)


def _merge(live: Any, config: Any, schema: Schema | None) -> Any:
    """Structured merge of an applied configuration into a live value (a new value)."""
    if isinstance(live, dict) and isinstance(config, dict):
        if k8s_schemas.is_atomic_map(schema):
            return copy.deepcopy(config)
        merged = dict(live)
        for name, value in config.items():
            child = k8s_schemas.property_schema(schema, name)
            if value is None:
                merged.pop(name, None)
            else:
                merged[name] = _merge(live.get(name), value, child)
        return merged
    list_type, keys = list_type_of(schema)
    if isinstance(live, list) and isinstance(config, list) and list_type != "atomic":
        items = k8s_schemas.items_schema(schema)
        by_live = {item_token(i, list_type, keys): i for i in live}
        by_config = {item_token(i, list_type, keys): i for i in config}
        order = _interleave(list(by_live), list(by_config))
        return [
            _merge(by_live[t], by_config[t], items)
            if t in by_live and t in by_config
            else copy.deepcopy(by_config.get(t, by_live.get(t)))
            for t in order
        ]
    return copy.deepcopy(config)


def _interleave(live: list[str], config: list[str]) -> list[str]:
    """The applied order, each live-only item kept after the item it followed in live."""
    following: dict[str | None, list[str]] = {}
    previous: str | None = None
    for token in live:
        if token in config:
            previous = token
        else:
            following.setdefault(previous, []).append(token)
    order = list(following.get(None, []))
    for token in config:
        order += [token, *following.get(token, [])]
    return order


def _remove(obj: Obj, path: Path) -> None:
    """Delete the member at `path`, then any container this left empty (not the root)."""
    trail: list[tuple[Any, Any]] = []
    node: Any = obj
    for token in path:
        where = _locate(node, token)
        if where is None:
            return
        trail.append((node, where))
        node = node[where]
    while trail:
        container, where = trail.pop()
        del container[where]
        if container or not trail:
            return


def _is_item_key(path: Path) -> bool:
    """Whether the path is a key field of a list-map item (it goes only with its item)."""
    parent, name = (path[-2], path[-1]) if len(path) > 1 else ("", "")
    return parent.startswith("k:") and name[2:] in json.loads(parent[2:])


def _locate(node: Any, token: str) -> Any:
    kind, text = token[0], token[2:]
    if kind == "f":
        return text if isinstance(node, dict) and text in node else None
    if not isinstance(node, list):
        return None
    if kind == "i":
        return int(text) if int(text) < len(node) else None
    wanted = json.loads(text)
    for index, item in enumerate(node):
        if kind == "v" and item == wanted:
            return index
        if (
            kind == "k"
            and isinstance(item, dict)
            and all(item.get(k) == v for k, v in wanted.items())
        ):
            return index
    return None


def _diff(old: dict[Path, Any], new: dict[Path, Any]) -> tuple[set[Path], set[Path]]:
    """(added or modified, removed) member paths between two objects."""
    changed = {p for p, v in new.items() if p not in old or not _same(old[p], v)}
    return changed, set(old) - set(new)


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b
