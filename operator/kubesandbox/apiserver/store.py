"""In-memory object storage: objects by resource and namespace, indexed by uid, owner and
label, one resourceVersion counter, a bounded event history and watchers fed through asyncio
queues. The indexes keep the cost of a selected list, a garbage collection or a controller's
lookup independent of how many objects the store holds.

Everything runs on one event loop thread, so no locks: each method is atomic.
Stored objects are never mutated in place; a write stores a new dict.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field

from kubesandbox.apiserver.errors import StatusError
from kubesandbox.apiserver.selectors import ObjectFilter
from kubesandbox.objects import Obj

Ref = tuple[str, str, str]  # (resource key, namespace, name)
LabelValues = Mapping[str, Collection[str]]
"""Label constraints: each label must carry one of its values."""


@dataclass(frozen=True)
class Event:
    """One change in the store, as kept in the history."""

    rv: int
    key: str
    type: str  # ADDED, MODIFIED or DELETED
    obj: Obj
    old: Obj | None


@dataclass(eq=False)
class Watcher:
    """A watch on one resource: receives (type, object) pairs, None when closed."""

    key: str
    namespace: str | None
    match: ObjectFilter | None
    queue: asyncio.Queue[tuple[str, Obj] | None] = field(default_factory=asyncio.Queue)

    def _selects(self, obj: Obj | None) -> bool:
        if obj is None:
            return False
        if self.namespace is not None and obj["metadata"].get("namespace") != self.namespace:
            return False
        return self.match is None or self.match(obj)

    def offer(self, event: Event) -> None:
        """Queue the event as this watcher sees it: an object entering or leaving the
        selection is ADDED or DELETED."""
        now = event.type != "DELETED" and self._selects(event.obj)
        before = event.type != "ADDED" and self._selects(
            event.old if event.type == "MODIFIED" else event.obj
        )
        if now and before:
            self.queue.put_nowait(("MODIFIED", event.obj))
        elif now:
            self.queue.put_nowait(("ADDED", event.obj))
        elif before:
            self.queue.put_nowait(("DELETED", event.obj))


def expired(rv: int, oldest: int) -> StatusError:
    """410 Gone for a watch from a resourceVersion older than the history."""
    return StatusError(410, f"too old resource version: {rv} ({oldest})", "Expired")


def owner_uids(obj: Obj) -> list[str]:
    """The uids of an object's owners."""
    return [ref["uid"] for ref in obj["metadata"].get("ownerReferences") or () if "uid" in ref]


def _labels(obj: Obj) -> Mapping[str, str]:
    labels: Mapping[str, str] = obj["metadata"].get("labels") or {}
    return labels


def carries(obj: Obj, labels: LabelValues) -> bool:
    """Whether every label of `labels` is on the object with one of its values."""
    own = _labels(obj)
    return all(own.get(key) in values for key, values in labels.items())


class Store:
    """All objects of the sandbox, by resource key, then namespace, then name."""

    def __init__(self, history: int = 20_000) -> None:
        self.rv = 0
        self._objects: dict[str, dict[str, dict[str, Obj]]] = {}
        self._history: deque[Event] = deque(maxlen=history)
        self._compacted = 0  # highest resourceVersion dropped from the history
        self._watchers: dict[str, set[Watcher]] = {}
        self._dependents: dict[str, set[Ref]] = {}  # owner uid -> dependents
        self._by_uid: dict[str, Ref] = {}
        # resource key -> (label, value) -> namespace -> names
        self._by_label: dict[str, dict[tuple[str, str], dict[str, set[str]]]] = {}

    def get(self, key: str, namespace: str, name: str) -> Obj | None:
        """One object, or None."""
        return self._objects.get(key, {}).get(namespace, {}).get(name)

    def by_uid(self, uid: str) -> tuple[str, Obj] | None:
        """(resource key, object) of a uid, or None."""
        ref = self._by_uid.get(uid)
        if ref is None:
            return None
        obj = self.get(*ref)
        return None if obj is None else (ref[0], obj)

    def objects(
        self, key: str, namespace: str | None = None, labels: LabelValues | None = None
    ) -> Iterator[Obj]:
        """Objects of a resource, in one namespace or all; with `labels`, only those that
        carry each label with one of its values (looked up in the label index)."""
        if labels:
            yield from self._labelled(key, namespace, labels)
            return
        spaces = self._objects.get(key, {})
        if namespace is not None:
            yield from spaces.get(namespace, {}).values()
            return
        for objs in spaces.values():
            yield from objs.values()

    def _labelled(self, key: str, namespace: str | None, labels: LabelValues) -> Iterator[Obj]:
        """The objects that carry `labels`, found from the label with the fewest candidates."""
        index = self._by_label.get(key, {})

        def candidates(label: str) -> list[tuple[str, set[str]]]:
            out: list[tuple[str, set[str]]] = []
            for value in labels[label]:
                spaces = index.get((label, value), {})
                if namespace is None:
                    out += spaces.items()
                elif namespace in spaces:
                    out.append((namespace, spaces[namespace]))
            return out

        def size(found: list[tuple[str, set[str]]]) -> int:
            return sum(len(names) for _, names in found)

        fewest = min((candidates(label) for label in labels), key=size)
        for ns, names in fewest:
            for name in list(names):
                obj = self.get(key, ns, name)
                if obj is not None and carries(obj, labels):
                    yield obj

    def count(self, key: str, namespace: str | None = None) -> int:
        """How many objects a resource holds (in one namespace or all)."""
        spaces = self._objects.get(key, {})
        if namespace is not None:
            return len(spaces.get(namespace, {}))
        return sum(len(objs) for objs in spaces.values())

    def namespaces_in_use(self, namespace: str) -> list[str]:
        """Resource keys that still hold objects in a namespace."""
        return [key for key, spaces in self._objects.items() if spaces.get(namespace)]

    def dependents(self, uid: str) -> list[tuple[str, Obj]]:
        """(resource key, object) of the objects that name `uid` as an owner."""
        out = []
        for key, ns, name in self._dependents.get(uid, ()):
            obj = self.get(key, ns, name)
            if obj is not None:
                out.append((key, obj))
        return out

    def put(self, key: str, obj: Obj) -> Obj:
        """Store a new or changed object under the next resourceVersion and notify."""
        self.rv += 1
        meta = obj["metadata"]
        meta["resourceVersion"] = str(self.rv)
        ns, name = meta.get("namespace", ""), meta["name"]
        objs = self._objects.setdefault(key, {}).setdefault(ns, {})
        old = objs.get(name)
        objs[name] = obj
        if old is not None:
            self._unindex(key, old)
        self._index(key, obj)
        self._emit(Event(self.rv, key, "MODIFIED" if old else "ADDED", obj, old))
        return obj

    def remove(self, key: str, namespace: str, name: str, final: Obj | None = None) -> Obj | None:
        """Delete an object; its DELETED event carries a new resourceVersion and `final`, the
        last state (e.g. without the finalizer whose removal released it), if given."""
        objs = self._objects.get(key, {}).get(namespace, {})
        old = objs.pop(name, None)
        if old is None:
            return None
        self._unindex(key, old)
        self.rv += 1
        last = final if final is not None else old
        gone = last | {"metadata": last["metadata"] | {"resourceVersion": str(self.rv)}}
        self._emit(Event(self.rv, key, "DELETED", gone, None))
        return gone

    def _index(self, key: str, obj: Obj) -> None:
        meta = obj["metadata"]
        ref = (key, meta.get("namespace", ""), meta["name"])
        self._by_uid[meta["uid"]] = ref
        for uid in owner_uids(obj):
            self._dependents.setdefault(uid, set()).add(ref)
        index = self._by_label.setdefault(key, {})
        for pair in _labels(obj).items():
            index.setdefault(pair, {}).setdefault(ref[1], set()).add(ref[2])

    def _unindex(self, key: str, obj: Obj) -> None:
        meta = obj["metadata"]
        ref = (key, meta.get("namespace", ""), meta["name"])
        self._by_uid.pop(meta["uid"], None)
        for uid in owner_uids(obj):
            deps = self._dependents.get(uid)
            if deps is not None:
                deps.discard(ref)
                if not deps:
                    del self._dependents[uid]
        index = self._by_label.get(key, {})
        for pair in _labels(obj).items():
            spaces = index.get(pair, {})
            names = spaces.get(ref[1], set())
            names.discard(ref[2])
            if not names:
                spaces.pop(ref[1], None)
                if not spaces:
                    index.pop(pair, None)

    def _emit(self, event: Event) -> None:
        if len(self._history) == self._history.maxlen:
            self._compacted = self._history[0].rv
        self._history.append(event)
        for watcher in self._watchers.get(event.key, ()):
            watcher.offer(event)

    def watch(
        self, key: str, namespace: str | None, match: ObjectFilter | None, since: int | None
    ) -> Watcher:
        """A watcher that first replays the changes after resourceVersion `since`.

        `since` None or 0 means "from now". 410 when the history no longer reaches back.
        """
        watcher = Watcher(key, namespace, match)
        if since:
            if since < self._compacted:
                raise expired(since, self._compacted)
            for event in self._history:
                if event.rv > since and event.key == key:
                    watcher.offer(event)
        self._watchers.setdefault(key, set()).add(watcher)
        return watcher

    def unwatch(self, watcher: Watcher) -> None:
        """Stop feeding a watcher."""
        self._watchers.get(watcher.key, set()).discard(watcher)
