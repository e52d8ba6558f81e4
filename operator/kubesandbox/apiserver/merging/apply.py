"""Server-side apply and `metadata.managedFields` tracking, after structured-merge-diff.

Field sets are sets of paths in FieldsV1 tokens (`f:spec`, `k:{"name":"c"}`, `v:"x"`, `i:0`).
Maps merge per key, lists by `x-kubernetes-list-type` (`map` by its keys, `set` as a union,
`atomic` replaced), unknown structure is deduced (maps granular, lists atomic).

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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubesandbox.apiserver import k8s_schemas
from kubesandbox.apiserver.k8s_schemas import ListType, Schema
from kubesandbox.objects import Obj

Path = tuple[str, ...]
_KEY = tuple[str, str, str, str]

# Fields never tracked in managedFields (kube-apiserver's stripMetaManager).
STRIPPED_PATHS: tuple[Path, ...] = (
    ("f:apiVersion",),
    ("f:kind",),
    *(
        ("f:metadata", f"f:{name}")
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
    ),
)
_ITEM = "<list item>"  # the recorded "value" of a list item member: items are only added/removed
_TOKEN_ORDER = {".": 0, "f": 1, "k": 2, "v": 3, "i": 4}


class ApplyInvalid(ValueError):
    """An apply request the API server rejects with 400."""


@dataclass(frozen=True)
class Conflict:
    """A field of the applied configuration that another manager owns with another value."""

    manager: str
    operation: str
    api_version: str
    subresource: str
    path: Path

    @property
    def field(self) -> str:
        """The field as kube-apiserver prints it: `.spec.containers[name="c"].image`."""
        return "".join(_display_token(token) for token in self.path)

    @property
    def who(self) -> str:
        """The manager as kube-apiserver prints it: `"kubectl" using apps/v1`."""
        who = json.dumps(self.manager)
        if self.subresource:
            who += f" with subresource {json.dumps(self.subresource)}"
        return f"{who} using {self.api_version}" if self.operation == "Update" else who


class ApplyConflict(Exception):
    """Apply would change fields owned by other managers (HTTP 409, reason Conflict)."""

    def __init__(self, conflicts: list[Conflict]) -> None:
        self.conflicts = conflicts
        super().__init__(_conflict_message(conflicts))

    def causes(self) -> list[dict[str, str]]:
        """`Status.details.causes` entries of kube-apiserver's 409 answer."""
        return [
            {"type": "FieldManagerConflict", "message": f"conflict with {c.who}", "field": c.field}
            for c in self.conflicts
        ]


def _conflict_message(conflicts: list[Conflict]) -> str:
    if len(conflicts) == 1:
        only = conflicts[0]
        return f"Apply failed with 1 conflict: conflict with {only.who}: {only.field}"
    lines: list[str] = []
    for who in sorted({c.who for c in conflicts}):
        lines.append(f"conflicts with {who}:")
        lines.extend(f"- {c.field}" for c in conflicts if c.who == who)
    return f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)


@dataclass
class _Entry:
    manager: str
    operation: str
    api_version: str
    subresource: str = ""
    time: str | None = None
    fields: set[Path] = field(default_factory=set)

    @property
    def key(self) -> _KEY:
        version = self.api_version if self.operation == "Update" else ""
        return (self.manager, self.operation, self.subresource, version)

    def encode(self) -> Obj:
        entry: Obj = {"manager": self.manager, "operation": self.operation}
        entry["apiVersion"] = self.api_version
        if self.time:
            entry["time"] = self.time
        entry |= {"fieldsType": "FieldsV1", "fieldsV1": to_fields_v1(self.fields)}
        if self.subresource:
            entry["subresource"] = self.subresource
        return entry


def default_field_manager(user_agent: str) -> str:
    """The manager of a write without `fieldManager`: the user agent up to its first '/'."""
    return user_agent.split("/", 1)[0]


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
    entries = _decode(_managed_fields(live))
    body = _without_managed(live or {})
    merged = _merge(body, applied, root)
    applied_set = set(field_members(applied, root))
    mine = _entry(entries, _Entry(manager, "Apply", api_version))
    last, mine.fields, mine.api_version = mine.fields, applied_set, api_version
    owned = {path[:i] for e in entries for path in e.fields for i in range(1, len(path) + 1)}
    for path in sorted(last - applied_set, key=len):
        if path not in owned and not _is_item_key(path):
            _remove(merged, path)
    changed, removed = _diff(field_members(body, root), field_members(merged, root))
    _transfer(entries, mine.key, changed, removed, force)
    return _finish(live, merged, entries, mine, now)


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
    entries = _decode(_requested_managed_fields(old, new, subresource))
    body = _without_managed(new)
    changed, removed = _diff(
        field_members(_without_managed(old or {}), root), field_members(body, root)
    )
    mine = _entry(entries, _Entry(manager, operation, api_version, subresource))
    _transfer(entries, mine.key, changed, removed, force=True)
    mine.fields = (mine.fields - removed) | changed
    return _finish(old, body, entries, mine, now)


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
    list_type, keys = _list_type(schema)
    if isinstance(value, list) and list_type != "atomic":
        items = k8s_schemas.items_schema(schema)
        for item in value:
            item_path = (*path, _item_token(item, list_type, keys))
            out[item_path] = _ITEM
            if list_type == "map" and isinstance(item, dict):
                _collect(item, items, item_path, out)
        return
    if path:
        out[path] = value


def _list_type(schema: Schema | None) -> tuple[ListType, list[str]]:
    return k8s_schemas.list_type(schema) if schema is not None else ("atomic", [])


def _item_token(item: Any, list_type: ListType, keys: list[str]) -> str:
    if list_type == "map" and isinstance(item, dict):
        return "k:" + _json({k: item[k] for k in keys if k in item})
    return "v:" + _json(item)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _display_token(token: str) -> str:
    kind, text = token[0], token[2:]
    if kind == "f":
        return f".{text}"
    if kind == "k":
        fields = json.loads(text)
        return "[" + ",".join(f"{k}={_json(v)}" for k, v in fields.items()) + "]"
    return f"[={text}]" if kind == "v" else f"[{text}]"


def _stripped(path: Path) -> bool:
    return any(path[: len(prefix)] == prefix for prefix in STRIPPED_PATHS)


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


def _managed_fields(obj: Obj | None) -> list[Obj] | None:
    managed: list[Obj] | None = ((obj or {}).get("metadata") or {}).get("managedFields")
    return managed


def _requested_managed_fields(old: Obj | None, new: Obj, subresource: str) -> list[Obj] | None:
    """The managedFields to start from: the request's unless absent (or a subresource write)."""
    requested = _managed_fields(new)
    if subresource or requested is None:
        return _managed_fields(old)
    if requested in ([], [{}]):  # an explicit reset
        return []
    return requested if _decode(requested) else _managed_fields(old)


def _decode(managed: list[Obj] | None) -> list[_Entry]:
    return [
        _Entry(
            manager=e.get("manager", ""),
            operation=e.get("operation", "Update"),
            api_version=e.get("apiVersion", ""),
            subresource=e.get("subresource", ""),
            time=e.get("time"),
            fields=from_fields_v1(e.get("fieldsV1") or {}),
        )
        for e in managed or []
        if e.get("fieldsType", "FieldsV1") == "FieldsV1" and e.get("fieldsV1")
    ]


def _entry(entries: list[_Entry], wanted: _Entry) -> _Entry:
    """The entry with `wanted`'s key, added to `entries` when missing."""
    found = next((e for e in entries if e.key == wanted.key), None)
    if found is None:
        entries.append(wanted)
        return wanted
    return found


def _without_managed(obj: Obj) -> Obj:
    body = copy.deepcopy(obj)
    (body.get("metadata") or {}).pop("managedFields", None)
    return body


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
    list_type, keys = _list_type(schema)
    if isinstance(live, list) and isinstance(config, list) and list_type != "atomic":
        items = k8s_schemas.items_schema(schema)
        by_live = {_item_token(i, list_type, keys): i for i in live}
        by_config = {_item_token(i, list_type, keys): i for i in config}
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


def _transfer(
    entries: list[_Entry], acting: _KEY, changed: set[Path], removed: set[Path], force: bool
) -> None:
    """Take changed fields from the other managers (ApplyConflict unless forced)."""
    others = [e for e in entries if e.key != acting]
    conflicts = [
        Conflict(e.manager, e.operation, e.api_version, e.subresource, path)
        for e in others
        for path in sorted(e.fields & changed)
    ]
    if conflicts and not force:
        raise ApplyConflict(conflicts)
    for entry in others:
        entry.fields -= changed | removed


def _finish(
    old: Obj | None, body: Obj, entries: list[_Entry], mine: _Entry, now: datetime | None
) -> Obj:
    """`body` with the encoded entries, or with old's managedFields when nothing changed."""
    mine.time = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    kept = sorted((e for e in entries if e.fields), key=_entry_order)
    encoded = [e.encode() for e in kept]
    previous = _managed_fields(old)
    if (
        old is not None
        and _without_managed(old) == body
        and _untimed(previous) == _untimed(encoded)
    ):
        encoded = copy.deepcopy(previous or [])
    result = copy.deepcopy(body)
    if encoded:
        result.setdefault("metadata", {})["managedFields"] = encoded
    return result


def _entry_order(entry: _Entry) -> tuple[str, str, str, str, str]:
    return (entry.operation, entry.time or "", entry.manager, entry.api_version, entry.subresource)


def _untimed(managed: list[Obj] | None) -> list[str]:
    return sorted(_json({k: v for k, v in e.items() if k != "time"}) for e in managed or [])
