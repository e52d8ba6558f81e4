"""The objects of one kind as the queue's workers see them: keys (`namespace/name`), the
latest body of each from kopf's watch (the cache a reconcile reads), what is observed of
their children grouped by owner, a logger per object."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

import kopf


def object_key(namespace: str | None, name: str | None) -> str:
    """The queue's key of a namespaced object."""
    return f"{namespace}/{name}"


def key_of(body: Mapping[str, Any]) -> str:
    """The key of the object `body`."""
    meta = body.get("metadata") or {}
    return object_key(meta.get("namespace"), meta.get("name"))


def uid_of(body: Mapping[str, Any]) -> str:
    """The object's uid."""
    return str((body.get("metadata") or {}).get("uid"))


def deleting(body: Mapping[str, Any]) -> bool:
    """Whether the object is being deleted (it waits for finalizers)."""
    return bool((body.get("metadata") or {}).get("deletionTimestamp"))


def _cached(raw: Mapping[str, Any]) -> kopf.Body:
    """The body as cached: without `managedFields`, which no reconcile reads and which is
    often the largest part of an object."""
    meta = {k: v for k, v in (raw.get("metadata") or {}).items() if k != "managedFields"}
    return kopf.Body(cast(kopf.RawBody, {**raw, "metadata": meta}))


@dataclass
class Bodies:
    """The latest body of every object of a kind, by key, from its watch events."""

    bodies: dict[str, kopf.Body] = field(default_factory=dict)

    def observe(self, event_type: str | None, raw: Mapping[str, Any]) -> str:
        """Keep the body of a watch event (drop it on DELETED); returns its key."""
        key = key_of(raw)
        if event_type == "DELETED":
            self.bodies.pop(key, None)
        else:
            self.bodies[key] = _cached(raw)
        return key

    def get(self, key: str) -> kopf.Body | None:
        """The latest body of `key`, None when it is gone (or not listed yet)."""
        return self.bodies.get(key)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self.bodies))

    def __len__(self) -> int:
        return len(self.bodies)


V = TypeVar("V")


@dataclass
class Grouped(Generic[V]):
    """What is observed of each child object (by its key), grouped by its owner (a job's
    uid, a service's key): the cache of one watched resource of children."""

    groups: dict[str, dict[str, V]] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)
    """The group of each child, by its key."""

    def put(self, key: str, group: str, value: V) -> None:
        """Keep what the child `key` of `group` shows now."""
        if self.owners.get(key, group) != group:
            self.drop(key)
        self.groups.setdefault(group, {})[key] = value
        self.owners[key] = group

    def drop(self, key: str) -> None:
        """Forget the child `key` (gone, or no longer one of the kind's children)."""
        group = self.owners.pop(key, None)
        if group is None:
            return
        children = self.groups[group]
        children.pop(key, None)
        if not children:
            del self.groups[group]

    def of(self, group: str) -> list[V]:
        """What is observed of the children of `group`."""
        return list(self.groups.get(group, {}).values())

    def __len__(self) -> int:
        return len(self.owners)


class ObjectLogger(logging.LoggerAdapter[logging.Logger]):
    """Log lines of one object, prefixed `[namespace/name]` as kopf's are."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return f"[{(self.extra or {}).get('key')}] {msg}", kwargs


def object_logger(kind: str, key: str) -> ObjectLogger:
    """The logger of the object `key` of `kind` (`bigmodel.<kind>`)."""
    return ObjectLogger(logging.getLogger(f"bigmodel.{kind}"), {"key": key})
