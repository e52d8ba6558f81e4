"""managedFields (pure): the managers' entries of an object, the fields each one owns, the
ownership moved by a write, and conflicts with other managers when applying.

No-op writes: when a write changes nothing but the acting manager's timestamp, the result
keeps the old `managedFields` verbatim (kube-apiserver's IgnoreManagedFieldsTimestamps
transformer), so that the server can tell "no change" with `result == live`.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

from kubesandbox.apiserver.merging.fieldsets import (
    Path,
    canonical_json,
    display_token,
    from_fields_v1,
    to_fields_v1,
)
from kubesandbox.objects import Obj

EntryKey = tuple[str, str, str, str]


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
        return "".join(display_token(token) for token in self.path)

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
class Entry:
    """One manager's entry: who wrote (operation, apiVersion, subresource), when, which fields."""

    manager: str
    operation: str
    api_version: str
    subresource: str = ""
    time: str | None = None
    fields: set[Path] = field(default_factory=set)
    read: tuple[frozenset[Path], Obj] | None = None
    """The fields as decoded and their FieldsV1: encoded again as they were while unchanged."""

    @property
    def key(self) -> EntryKey:
        version = self.api_version if self.operation == "Update" else ""
        return (self.manager, self.operation, self.subresource, version)

    def encode(self) -> Obj:
        entry: Obj = {"manager": self.manager, "operation": self.operation}
        entry["apiVersion"] = self.api_version
        if self.time:
            entry["time"] = self.time
        if self.read is not None and self.read[0] == self.fields:
            fields_v1 = self.read[1]
        else:
            fields_v1 = to_fields_v1(self.fields)
        entry |= {"fieldsType": "FieldsV1", "fieldsV1": fields_v1}
        if self.subresource:
            entry["subresource"] = self.subresource
        return entry


def default_field_manager(user_agent: str) -> str:
    """The manager of a write without `fieldManager`: the user agent up to its first '/'."""
    return user_agent.split("/", 1)[0]


def managed_fields(obj: Obj | None) -> list[Obj] | None:
    """The object's `metadata.managedFields`, if any."""
    managed: list[Obj] | None = ((obj or {}).get("metadata") or {}).get("managedFields")
    return managed


def requested_managed_fields(old: Obj | None, new: Obj, subresource: str) -> list[Obj] | None:
    """The managedFields to start from: the request's unless absent (or a subresource write)."""
    requested = managed_fields(new)
    if subresource or requested is None:
        return managed_fields(old)
    if requested in ([], [{}]):  # an explicit reset
        return []
    return requested if decode(requested) else managed_fields(old)


def decode(managed: list[Obj] | None) -> list[Entry]:
    """The FieldsV1 entries of a managedFields list."""
    entries = []
    for e in managed or []:
        if e.get("fieldsType", "FieldsV1") != "FieldsV1" or not e.get("fieldsV1"):
            continue
        fields = from_fields_v1(e["fieldsV1"])
        entries.append(
            Entry(
                manager=e.get("manager", ""),
                operation=e.get("operation", "Update"),
                api_version=e.get("apiVersion", ""),
                subresource=e.get("subresource", ""),
                time=e.get("time"),
                fields=fields,
                read=(frozenset(fields), e["fieldsV1"]),
            )
        )
    return entries


def entry_of(entries: list[Entry], wanted: Entry) -> Entry:
    """The entry with `wanted`'s key, added to `entries` when missing."""
    found = next((e for e in entries if e.key == wanted.key), None)
    if found is None:
        entries.append(wanted)
        return wanted
    return found


def without_managed(obj: Obj) -> Obj:
    """The object without its managedFields: a new top level and metadata, every other value
    shared with `obj` (objects are never changed in place: read it, do not change it)."""
    meta = obj.get("metadata")
    if meta is None:
        return dict(obj)
    return {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}


def transfer(
    entries: list[Entry], acting: EntryKey, changed: set[Path], removed: set[Path], force: bool
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


def finish(
    old: Obj | None, body: Obj, entries: list[Entry], mine: Entry, now: datetime | None
) -> Obj:
    """`body` with the encoded entries, or with old's managedFields when nothing changed (a
    new top level and metadata; the other values are body's)."""
    mine.time = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    kept = sorted((e for e in entries if e.fields), key=_entry_order)
    encoded = [e.encode() for e in kept]
    previous = managed_fields(old)
    if old is not None and without_managed(old) == body and _untimed(previous) == _untimed(encoded):
        encoded = copy.deepcopy(previous or [])
    result = dict(body)
    if encoded:
        result["metadata"] = {**(body.get("metadata") or {}), "managedFields": encoded}
    return result


def _entry_order(entry: Entry) -> tuple[str, str, str, str, str]:
    return (entry.operation, entry.time or "", entry.manager, entry.api_version, entry.subresource)


def _untimed(managed: list[Obj] | None) -> list[str]:
    return sorted(
        canonical_json({k: v for k, v in e.items() if k != "time"}) for e in managed or []
    )
