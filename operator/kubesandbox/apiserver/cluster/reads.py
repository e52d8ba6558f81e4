"""Reads: types by path, get, list (selected and paged) and watch, as served at a version."""

from __future__ import annotations

import base64
import builtins
import json

from kubesandbox.apiserver import errors
from kubesandbox.apiserver.errors import StatusError
from kubesandbox.apiserver.registry import CRD_KEY, Registry, ResourceType
from kubesandbox.apiserver.selectors import (
    label_values,
    object_filter,
    parse_field_selector,
    parse_label_selector,
)
from kubesandbox.apiserver.store import Store, Watcher
from kubesandbox.objects import Obj


def view(rt: ResourceType, obj: Obj) -> Obj:
    """The object as served at this version (CR versions share storage, no conversion)."""
    if obj.get("apiVersion") == rt.api_version:
        return obj
    return {**obj, "apiVersion": rt.api_version}


class Reads:
    """The read verbs over the store."""

    def __init__(self, store: Store, registry: Registry) -> None:
        self.store = store
        self.registry = registry

    def resource(self, group: str, version: str, plural: str) -> ResourceType:
        """The served type at this path, or 404."""
        rt = self.registry.get(group, version, plural)
        if rt is None:
            raise StatusError(404, "the server could not find the requested resource")
        return rt

    def crds(self) -> builtins.list[Obj]:
        """All CustomResourceDefinitions."""
        return list(self.store.objects(CRD_KEY))

    def crd_of(self, rt: ResourceType) -> Obj | None:
        """The CRD that serves a type (None for built-ins)."""
        return self.store.get(CRD_KEY, "", rt.crd) if rt.crd else None

    def existing(self, rt: ResourceType, ns: str, name: str) -> Obj:
        """The stored object (at its storage version), or 404."""
        obj = self.store.get(rt.key, ns if rt.namespaced else "", name)
        if obj is None:
            raise errors.not_found(rt.group, rt.plural, name)
        return obj

    def get(self, rt: ResourceType, ns: str, name: str) -> Obj:
        """One object, or 404."""
        return view(rt, self.existing(rt, ns, name))

    def list(
        self,
        rt: ResourceType,
        ns: str | None,
        label_selector: str = "",
        field_selector: str = "",
        limit: int = 0,
        continue_token: str = "",
    ) -> Obj:
        """A List object, filtered and paged (`continue` encodes the last name returned)."""
        labels = parse_label_selector(label_selector)
        match = object_filter(labels, parse_field_selector(field_selector, rt.key))
        rv = self.store.rv
        start: tuple[str, str] = ("", "")
        if continue_token:
            try:
                state = json.loads(base64.urlsafe_b64decode(continue_token))
                rv, start = int(state["rv"]), (state["ns"], state["name"])
            except (ValueError, KeyError, TypeError) as exc:
                raise errors.bad_request("invalid continue token") from exc
        objs = self.store.objects(rt.key, ns if rt.namespaced else None, label_values(labels))
        items = sorted(
            (o for o in objs if match is None or match(o)),
            key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]),
        )
        if continue_token:
            items = [
                o
                for o in items
                if (o["metadata"].get("namespace", ""), o["metadata"]["name"]) > start
            ]
        meta: Obj = {"resourceVersion": str(rv)}
        if limit and len(items) > limit:
            last = items[limit - 1]["metadata"]
            token = {"rv": rv, "ns": last.get("namespace", ""), "name": last["name"]}
            meta["continue"] = base64.urlsafe_b64encode(json.dumps(token).encode()).decode()
            meta["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        return {
            "kind": f"{rt.kind}List",
            "apiVersion": rt.api_version,
            "metadata": meta,
            "items": [view(rt, o) for o in items],
        }

    def watch(
        self,
        rt: ResourceType,
        ns: str | None,
        label_selector: str = "",
        field_selector: str = "",
        resource_version: str = "",
    ) -> Watcher:
        """A watcher; without a resourceVersion (or "0") it starts with the current objects."""
        labels = parse_label_selector(label_selector)
        match = object_filter(labels, parse_field_selector(field_selector, rt.key))
        try:
            since = int(resource_version or 0)
        except ValueError as exc:
            raise errors.bad_request(f"invalid resource version: {resource_version}") from exc
        watcher = self.store.watch(rt.key, ns if rt.namespaced else None, match, since)
        if not since:
            for obj in self.store.objects(rt.key, watcher.namespace, label_values(labels)):
                if match is None or match(obj):
                    watcher.queue.put_nowait(("ADDED", obj))
        return watcher
