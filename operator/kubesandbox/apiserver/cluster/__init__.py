"""The API semantics of the sandbox, free of HTTP: create, read, update, patch, delete, watch.

Object metadata (uid, resourceVersion, generation), the status split, CRD validation,
finalizers, garbage collection, namespaces and CRD serving all happen here.
"""

from __future__ import annotations

import base64
import builtins
import copy
import json
import random
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jsonpatch
import yaml

from kubesandbox.apiserver import crdschema, errors
from kubesandbox.apiserver.cluster import gc
from kubesandbox.apiserver.cluster.defaults import apply_create_defaults
from kubesandbox.apiserver.errors import ApiError, Cause
from kubesandbox.apiserver.merging import apply, strategic
from kubesandbox.apiserver.registry import Registry, ResourceType
from kubesandbox.apiserver.selectors import (
    format_label_selector,
    object_filter,
    parse_field_selector,
    parse_label_selector,
    selector_from_label_selector,
)
from kubesandbox.apiserver.store import Store, Watcher
from kubesandbox.objects import Obj, now

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SUFFIX = "bcdfghjklmnpqrstvwxz2456789"
CRD_KEY = "customresourcedefinitions.apiextensions.k8s.io"
# Built-in kinds whose strategy sets metadata.generation (others, e.g. ConfigMap, have none).
_GENERATION_KEYS = frozenset({"deployments.apps", "replicasets.apps", CRD_KEY})
MERGE, JSON_PATCH, STRATEGIC, APPLY = (
    "application/merge-patch+json",
    "application/json-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
)


@dataclass(frozen=True)
class WriteOptions:
    """Query options of a write: dryRun, fieldManager, fieldValidation, force."""

    dry_run: bool = False
    field_manager: str = ""
    field_validation: str = "Warn"
    force: bool = False


@dataclass
class WriteResult:
    """The stored (or dry-run) object, and warnings for the `Warning` header."""

    obj: Obj
    warnings: list[str] = field(default_factory=list)
    created: bool = False


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


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


def _spec_view(rt: ResourceType, obj: Obj) -> Obj:
    """What `generation` tracks: everything but metadata (and status when it is separate)."""
    skip = {"metadata", "status"} if rt.has_status or not rt.crd else {"metadata"}
    return {k: v for k, v in obj.items() if k not in skip}


def _has_generation(rt: ResourceType) -> bool:
    """Whether objects of this type carry `metadata.generation` (custom resources always)."""
    return bool(rt.crd) or rt.key in _GENERATION_KEYS


def _comparable(obj: Obj) -> Obj:
    """The object minus its resourceVersion: equal ones make a write a no-op."""
    meta = {k: v for k, v in obj["metadata"].items() if k != "resourceVersion"}
    return obj | {"metadata": meta}


def _name_causes(rt: ResourceType, meta: Obj) -> list[Cause]:
    name = meta.get("name", "")
    if not name:
        return [
            Cause(
                "FieldValueRequired",
                "Required value: name or generateName is required",
                "metadata.name",
            )
        ]
    pattern = _LABEL if rt.plural in ("namespaces", "services") else _NAME
    if len(name) > 253 or not pattern.match(name):
        msg = (
            f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of lower case '
            "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric "
            "character"
        )
        return [Cause("FieldValueInvalid", msg, "metadata.name")]
    return []


def _releasable(meta: Obj) -> bool:
    """Whether a deleting object has nothing left holding it (finalizers, grace period)."""
    return (
        bool(meta.get("deletionTimestamp"))
        and not meta.get("finalizers")
        and not meta.get("deletionGracePeriodSeconds")
    )


class Cluster:
    """All the state of one sandbox and the operations of the Kubernetes API on it."""

    def __init__(self, history: int = 20_000) -> None:
        self.store = Store(history)
        self.registry = Registry.with_builtins()
        self._schemas: dict[tuple[str, str, str], crdschema.CRDSchema | None] = {}
        self.pod_deletion_hooks: builtins.list[Callable[[Obj], bool]] = []
        ns_type = self.resource("", "v1", "namespaces")
        for ns in SYSTEM_NAMESPACES:
            self.create(ns_type, "", {"metadata": {"name": ns}})

    # -- lookups -----------------------------------------------------------------------

    def resource(self, group: str, version: str, plural: str) -> ResourceType:
        """The served type at this path, or 404."""
        rt = self.registry.get(group, version, plural)
        if rt is None:
            raise ApiError(404, "the server could not find the requested resource")
        return rt

    def crds(self) -> builtins.list[Obj]:
        """All CustomResourceDefinitions."""
        return list(self.store.objects(CRD_KEY))

    def crd_of(self, rt: ResourceType) -> Obj | None:
        """The CRD that serves a type (None for built-ins)."""
        return self.store.get(CRD_KEY, "", rt.crd) if rt.crd else None

    def view(self, rt: ResourceType, obj: Obj) -> Obj:
        """The object as served at this version (CR versions share storage, no conversion)."""
        if obj.get("apiVersion") == rt.api_version:
            return obj
        return {**obj, "apiVersion": rt.api_version}

    def _existing(self, rt: ResourceType, ns: str, name: str) -> Obj:
        obj = self.store.get(rt.key, ns if rt.namespaced else "", name)
        if obj is None:
            raise errors.not_found(rt.group, rt.plural, name)
        return obj

    def get(self, rt: ResourceType, ns: str, name: str) -> Obj:
        """One object, or 404."""
        return self.view(rt, self._existing(rt, ns, name))

    # -- list and watch ----------------------------------------------------------------

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
        match = object_filter(
            parse_label_selector(label_selector), parse_field_selector(field_selector, rt.key)
        )
        rv = self.store.rv
        start: tuple[str, str] = ("", "")
        if continue_token:
            try:
                state = json.loads(base64.urlsafe_b64decode(continue_token))
                rv, start = int(state["rv"]), (state["ns"], state["name"])
            except (ValueError, KeyError, TypeError) as exc:
                raise errors.bad_request("invalid continue token") from exc
        objs = self.store.objects(rt.key, ns if rt.namespaced else None)
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
            "items": [self.view(rt, o) for o in items],
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
        match = object_filter(
            parse_label_selector(label_selector), parse_field_selector(field_selector, rt.key)
        )
        try:
            since = int(resource_version or 0)
        except ValueError as exc:
            raise errors.bad_request(f"invalid resource version: {resource_version}") from exc
        watcher = self.store.watch(rt.key, ns if rt.namespaced else None, match, since)
        if not since:
            for obj in self.store.objects(rt.key, watcher.namespace):
                if match is None or match(obj):
                    watcher.queue.put_nowait(("ADDED", obj))
        return watcher

    # -- writes ------------------------------------------------------------------------

    def create(
        self,
        rt: ResourceType,
        ns: str,
        body: Obj,
        opts: WriteOptions = WriteOptions(),
        user_agent: str = "",
        tracked: bool = False,
    ) -> WriteResult:
        """Create an object: 409 when the name exists, 422 when invalid."""
        obj = copy.deepcopy(body)
        self._check_type(rt, obj)
        meta = obj.setdefault("metadata", {})
        if rt.namespaced:
            if meta.get("namespace", ns) != ns:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent "
                    "on the request"
                )
            meta["namespace"] = ns
            self._check_namespace_open(ns)
        else:
            meta.pop("namespace", None)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(random.choices(_SUFFIX, k=5))
        if causes := _name_causes(rt, meta):
            raise errors.invalid(rt.kind, rt.group, meta.get("name", ""), causes)
        if self.store.get(rt.key, meta.get("namespace", ""), meta["name"]) is not None:
            raise errors.already_exists(rt.group, rt.plural, meta["name"])
        for key in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds"):
            meta.pop(key, None)
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=now())
        if _has_generation(rt):
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        if rt.has_status and rt.kind != "Node":
            obj.pop("status", None)
        if not rt.crd:
            apply_create_defaults(obj)
        if rt.key == CRD_KEY:
            obj["status"] = _crd_status(obj)
        warnings = self._admit(rt, obj, None, opts)
        self._track(rt, None, obj, opts, user_agent, "Apply" if tracked else "Update")
        if not opts.dry_run:
            self.store.put(rt.key, obj)
            self._after_create(rt, obj)
        return WriteResult(self.view(rt, obj), warnings, created=True)

    def update(
        self,
        rt: ResourceType,
        ns: str,
        name: str,
        body: Obj,
        opts: WriteOptions = WriteOptions(),
        subresource: str = "",
        user_agent: str = "",
    ) -> WriteResult:
        """Replace an object (or its status): 409 on a stale resourceVersion."""
        old = self._existing(rt, ns, name)
        new = copy.deepcopy(body)
        self._check_type(rt, new)
        meta = new.setdefault("metadata", {})
        if meta.get("name", name) != name:
            raise errors.bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the "
                f"URL ({name})"
            )
        rv = meta.get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise errors.conflict(
                rt.group,
                rt.plural,
                name,
                "the object has been modified; please apply your changes to the latest version "
                "and try again",
            )
        return self._write(rt, old, new, opts, subresource, user_agent, "Update")

    def _write(
        self,
        rt: ResourceType,
        old: Obj,
        new: Obj,
        opts: WriteOptions,
        subresource: str,
        user_agent: str,
        operation: str,
    ) -> WriteResult:
        """Store `new` over `old` with the subresource rules, generation and admission."""
        if subresource == "status":
            status_only = copy.deepcopy(old) | {"status": new.get("status", {})}
            if operation == "Apply":  # apply computed the managers' fields: keep them
                status_only["metadata"]["managedFields"] = new["metadata"].get("managedFields", [])
            new = status_only
        else:
            keep = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds")
            meta = new["metadata"]
            for key in ("namespace", "name", *keep):
                if key in old["metadata"]:
                    meta[key] = old["metadata"][key]
                else:
                    meta.pop(key, None)
            if rt.has_status:
                new.pop("status", None)
                if "status" in old:
                    new["status"] = copy.deepcopy(old["status"])
        meta = new["metadata"]
        meta["resourceVersion"] = old["metadata"]["resourceVersion"]
        if _has_generation(rt):
            generation = old["metadata"].get("generation", 1)
            if _spec_view(rt, new) != _spec_view(rt, old):
                generation += 1
            meta["generation"] = generation
        else:
            meta.pop("generation", None)
        warnings = self._admit(rt, new, old, opts)
        self._track(rt, old, new, opts, user_agent, operation, subresource)
        if _comparable(new) == _comparable(old) or opts.dry_run:
            return WriteResult(self.view(rt, new if opts.dry_run else old), warnings)
        if _releasable(meta):
            self._remove(rt.key, new)
            return WriteResult(self.view(rt, new), warnings)
        self.store.put(rt.key, new)
        if rt.key == CRD_KEY:
            self.registry.set_crd(new)
        return WriteResult(self.view(rt, new), warnings)

    def patch(
        self,
        rt: ResourceType,
        ns: str,
        name: str,
        content_type: str,
        data: bytes,
        opts: WriteOptions = WriteOptions(),
        subresource: str = "",
        user_agent: str = "",
    ) -> WriteResult:
        """Apply a JSON, merge, strategic-merge or apply patch."""
        kind = content_type.split(";")[0].strip()
        try:
            patch = yaml.load(data, Loader=yaml.CSafeLoader) if kind == APPLY else json.loads(data)
        except (ValueError, yaml.YAMLError) as exc:
            raise errors.bad_request(f"error decoding patch: {exc}") from exc
        old = self.store.get(rt.key, ns if rt.namespaced else "", name)
        if kind == APPLY:
            return self._apply(rt, ns, name, old, patch, opts, subresource, user_agent)
        if old is None:
            raise errors.not_found(rt.group, rt.plural, name)
        view = self.view(rt, old)
        if subresource == "scale":
            scale = patched(rt, kind, self.to_scale(rt, old), patch)
            return self.update_scale(rt, ns, name, scale, opts, user_agent)
        new = patched(rt, kind, copy.deepcopy(view), patch)
        rv = new.get("metadata", {}).get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise errors.conflict(
                rt.group,
                rt.plural,
                name,
                "the object has been modified; please apply your "
                "changes to the latest version and try again",
            )
        return self._write(rt, old, new, opts, subresource, user_agent, "Update")

    def _apply(
        self,
        rt: ResourceType,
        ns: str,
        name: str,
        old: Obj | None,
        applied: Obj,
        opts: WriteOptions,
        subresource: str,
        user_agent: str,
    ) -> WriteResult:
        """Server-side apply: creates the object when absent."""
        if not isinstance(applied, dict):
            raise errors.bad_request("apply patch must be an object")
        manager = opts.field_manager
        if not manager:
            raise errors.bad_request("PATCH requests with apply content type require fieldManager")
        live = None if old is None else self.view(rt, old)
        try:
            merged = apply.server_side_apply(
                rt.api_version, rt.kind, live, applied, manager, opts.force, self._raw_schema(rt)
            )
        except apply.ApplyConflict as exc:
            causes = [Cause(c["type"], c["message"], c["field"]) for c in exc.causes()]
            raise ApiError(409, str(exc), "Conflict", causes=causes) from exc
        except apply.ApplyInvalid as exc:
            raise errors.bad_request(str(exc)) from exc
        if old is None:
            merged.setdefault("metadata", {})["name"] = name
            return self.create(rt, ns, merged, opts, user_agent, tracked=True)
        return self._write(rt, old, merged, opts, subresource, user_agent, "Apply")

    def _track(
        self,
        rt: ResourceType,
        old: Obj | None,
        new: Obj,
        opts: WriteOptions,
        user_agent: str,
        operation: str,
        subresource: str = "",
    ) -> None:
        """Maintain managedFields (not for apply, which already did)."""
        if operation == "Apply":
            return
        manager = opts.field_manager or apply.default_field_manager(user_agent) or "unknown"
        tracked = apply.track_update(
            rt.api_version, rt.kind, old, new, manager, operation, subresource, self._raw_schema(rt)
        )
        new["metadata"] = tracked["metadata"]

    # -- scale ---------------------------------------------------------------------------

    def to_scale(self, rt: ResourceType, obj: Obj) -> Obj:
        """The autoscaling/v1 Scale view of an object."""
        paths = rt.scale
        if paths is None:
            raise ApiError(404, "the server could not find the requested resource")
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

    def update_scale(
        self,
        rt: ResourceType,
        ns: str,
        name: str,
        scale: Obj,
        opts: WriteOptions,
        user_agent: str = "",
    ) -> WriteResult:
        """Write `spec.replicas` of a Scale back into its object."""
        old = self._existing(rt, ns, name)
        if rt.scale is None:
            raise ApiError(404, "the server could not find the requested resource")
        rv = scale.get("metadata", {}).get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise errors.conflict(rt.group, rt.plural, name, "the object has been modified")
        new = copy.deepcopy(old)
        _set_path(new, rt.scale.spec_replicas, scale.get("spec", {}).get("replicas", 0))
        result = self._write(rt, old, new, opts, "scale", user_agent, "Update")
        return WriteResult(self.to_scale(rt, result.obj), result.warnings)

    # -- delete --------------------------------------------------------------------------

    def delete(
        self,
        rt: ResourceType,
        ns: str,
        name: str,
        options: Obj | None = None,
        dry_run: bool = False,
    ) -> Obj:
        """Delete an object: returns it while finalizers hold it, else a Success Status."""
        options = options or {}
        obj = self._existing(rt, ns, name)
        pre = options.get("preconditions") or {}
        meta = obj["metadata"]
        for key, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
            if pre.get(key) and pre[key] != meta.get(key):
                raise errors.conflict(
                    rt.group,
                    rt.plural,
                    name,
                    f"Precondition failed: {label} in precondition: {pre[key]}, "
                    f"{label} in object meta: {meta.get(key)}",
                )
        if dry_run:
            return self.view(rt, obj)
        gone = self._delete(
            rt.key, obj, gc.propagation_policy(options), options.get("gracePeriodSeconds")
        )
        if gone:
            return errors.success(rt.group, rt.plural, name, meta["uid"])
        return self.view(rt, self.store.get(rt.key, meta.get("namespace", ""), name) or obj)

    def delete_collection(
        self,
        rt: ResourceType,
        ns: str | None,
        label_selector: str,
        field_selector: str,
        options: Obj,
        dry_run: bool = False,
    ) -> Obj:
        """Delete every selected object; returns the List of them."""
        listed = self.list(rt, ns, label_selector, field_selector)
        for item in [] if dry_run else listed["items"]:
            meta = item["metadata"]
            live = self.store.get(rt.key, meta.get("namespace", ""), meta["name"])
            if live is not None:
                self._delete(
                    rt.key, live, gc.propagation_policy(options), options.get("gracePeriodSeconds")
                )
        return listed

    def _delete(self, key: str, obj: Obj, policy: str, grace: int | None) -> bool:
        """Delete by policy; True when the object is gone now."""
        meta = obj["metadata"]
        uid = meta["uid"]
        finalizers = list(meta.get("finalizers") or ())
        if policy == "Orphan":
            if key == "pods":  # pods own nothing in practice: unlink without the dance
                for dep_key, dep in self.store.dependents(uid):
                    self.store.put(dep_key, gc.without_owner(dep, uid))
            elif gc.ORPHAN not in finalizers:
                # as kube: the `orphan` finalizer holds the owner while its dependents lose
                # their references to it, then the garbage collector drops the finalizer
                self._mark_deleting(key, obj, [*finalizers, gc.ORPHAN], 0)
                for dep_key, dep in self.store.dependents(uid):
                    self.store.put(dep_key, gc.without_owner(dep, uid))
                held = self.store.get(key, meta.get("namespace", ""), meta["name"])
                if held is None:
                    return True
                obj = gc.without_finalizer(held, gc.ORPHAN)
                if finalizers:
                    self.store.put(key, obj)
                    return False
        if (
            policy == "Foreground"
            and self.store.dependents(uid)
            and gc.FOREGROUND not in finalizers
        ):
            finalizers.append(gc.FOREGROUND)
        if key == "pods" and grace != 0 and any(hook(obj) for hook in self.pod_deletion_hooks):
            period = (
                grace
                if grace is not None
                else obj.get("spec", {}).get("terminationGracePeriodSeconds", 30)
            )
            return self._mark_deleting(key, obj, finalizers, period)
        if finalizers or key == "namespaces":
            self._mark_deleting(key, obj, finalizers, 0)
            if policy == "Foreground":
                for dep_key, dep in self.store.dependents(uid):
                    self._delete(dep_key, dep, "Foreground", None)
            if key == "namespaces":
                self._empty_namespace(meta["name"])
            return False
        self._remove(key, obj)
        return True

    def _mark_deleting(
        self, key: str, obj: Obj, finalizers: builtins.list[str], grace: int
    ) -> bool:
        meta = obj["metadata"]
        if meta.get("deletionTimestamp") and meta.get("finalizers") == finalizers:
            return False
        new_meta = meta | {"finalizers": finalizers} if finalizers else dict(meta)
        new_meta.setdefault("deletionTimestamp", now())
        new_meta.setdefault("deletionGracePeriodSeconds", grace)
        new = obj | {"metadata": new_meta}
        if key == "namespaces":
            new["status"] = {"phase": "Terminating"}
        self.store.put(key, new)
        return False

    def _remove(self, key: str, obj: Obj) -> None:
        """Drop an object for good, then collect what depended on it."""
        meta = obj["metadata"]
        ns, uid = meta.get("namespace", ""), meta["uid"]
        if self.store.remove(key, ns, meta["name"], final=obj) is None:
            return
        if key == CRD_KEY:
            self._drop_crd(obj)
        for dep_key, dep in self.store.dependents(uid):
            if (
                gc.dependent_action(dep, uid, lambda u: self.store.by_uid(u) is not None)
                == "unlink"
            ):
                self.store.put(dep_key, gc.without_owner(dep, uid))
            else:
                self._delete(dep_key, dep, "Background", None)
        for owner_uid in {r.get("uid", "") for r in meta.get("ownerReferences") or ()}:
            found = self.store.by_uid(owner_uid)
            if found and gc.should_release(found[1], len(self.store.dependents(owner_uid))):
                self._release(found[0], gc.without_finalizer(found[1], gc.FOREGROUND))
        if ns:
            namespace = self.store.get("namespaces", "", ns)
            if namespace and namespace["metadata"].get("deletionTimestamp"):
                self._empty_namespace(ns)

    def _release(self, key: str, obj: Obj) -> None:
        """Store an object that lost a finalizer; remove it if that was the last one."""
        if obj["metadata"].get("finalizers"):
            self.store.put(key, obj)
        else:
            self._remove(key, obj)

    def _empty_namespace(self, ns: str) -> None:
        """Delete what a terminating namespace holds; remove it once nothing is left."""
        keys = self.store.namespaces_in_use(ns)
        for key in keys:
            for obj in list(self.store.objects(key, ns)):
                if not obj["metadata"].get("deletionTimestamp"):
                    self._delete(key, obj, "Background", 0)
        namespace = self.store.get("namespaces", "", ns)
        if namespace and not self.store.namespaces_in_use(ns):
            self._remove("namespaces", namespace)

    # -- internals -----------------------------------------------------------------------

    def _check_type(self, rt: ResourceType, obj: Obj) -> None:
        if not isinstance(obj, dict):
            raise errors.bad_request("the body of the request must be a JSON object")
        api_version, kind = (
            obj.setdefault("apiVersion", rt.api_version),
            obj.setdefault("kind", rt.kind),
        )
        if kind != rt.kind or api_version.split("/")[0] != rt.api_version.split("/")[0]:
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API "
                f"version ({rt.api_version})"
                if kind == rt.kind
                else f"{kind} in version {api_version} cannot be handled as a {rt.kind}"
            )
        obj["apiVersion"] = rt.api_version

    def _check_namespace_open(self, ns: str) -> None:
        namespace = self.store.get("namespaces", "", ns)
        if namespace is None:
            raise errors.not_found("", "namespaces", ns)
        if namespace["metadata"].get("deletionTimestamp"):
            raise ApiError(
                403,
                f"unable to create new content in namespace {ns} because it is being terminated",
                "Forbidden",
            )

    def _raw_schema(self, rt: ResourceType) -> Obj | None:
        """The openAPIV3Schema of a custom resource version (None for built-ins)."""
        crd = self.crd_of(rt)
        if crd is None:
            return None
        version: Obj = next((v for v in crd["spec"]["versions"] if v["name"] == rt.version), {})
        schema: Obj | None = (version.get("schema") or {}).get("openAPIV3Schema")
        return schema

    def _schema(self, rt: ResourceType) -> crdschema.CRDSchema | None:
        """The CRDSchema of a custom resource version (None for built-ins or no schema)."""
        crd = self.crd_of(rt)
        if crd is None:
            return None
        key = (rt.crd, rt.version, crd["metadata"]["resourceVersion"])
        if key not in self._schemas:
            schema = self._raw_schema(rt)
            self._schemas[key] = None if schema is None else crdschema.CRDSchema(schema)
        return self._schemas[key]

    def _admit(
        self, rt: ResourceType, obj: Obj, old: Obj | None, opts: WriteOptions
    ) -> builtins.list[str]:
        """Prune, default and validate a custom resource in place; 400/422 when rejected."""
        schema = self._schema(rt)
        if schema is None:
            return []
        unknown = schema.unknown_fields(obj)
        pruned = schema.prune(obj)
        warnings = [f'unknown field "{path}"' for path in unknown]
        if unknown and opts.field_validation == "Strict":
            raise errors.bad_request(
                f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                f"strict decoding error: {', '.join(warnings)}"
            )
        defaulted = schema.default(pruned)
        problems = schema.validate(defaulted, old)
        if problems:
            causes = [Cause(p.type, p.message, p.field) for p in problems]
            raise errors.invalid(rt.kind, rt.group, obj["metadata"]["name"], causes)
        obj.clear()
        obj.update(defaulted)
        return warnings if opts.field_validation == "Warn" else []

    def _after_create(self, rt: ResourceType, obj: Obj) -> None:
        if rt.plural == "namespaces" and not rt.group:
            sa = {"metadata": {"name": "default"}}
            self.create(self.resource("", "v1", "serviceaccounts"), obj["metadata"]["name"], sa)
        elif rt.key == CRD_KEY:
            self.registry.set_crd(obj)

    def _drop_crd(self, crd: Obj) -> None:
        """Stop serving a deleted CRD's resources and remove their objects."""
        types = [rt for rt in self.registry if rt.crd == crd["metadata"]["name"]]
        self.registry.remove_crd(crd["metadata"]["name"])
        for key in {rt.key for rt in types}:
            for obj in list(self.store.objects(key)):
                meta = obj["metadata"]
                self.store.remove(key, meta.get("namespace", ""), meta["name"])


def patched(rt: ResourceType, kind: str, target: Obj, patch: Any) -> Obj:
    """`target` with a JSON, merge or strategic-merge patch applied; 415 for other types."""
    try:
        if kind == JSON_PATCH:
            result: Obj = jsonpatch.apply_patch(target, patch)
            return result
        if kind == MERGE:
            return dict(merge_patch(target, patch))
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
        raise ApiError(
            422, f"the server rejected our request due to an error in our request: {exc}"
        ) from exc
    if kind == STRATEGIC:
        try:
            return strategic.strategic_merge_patch(rt.api_version, rt.kind, target, patch)
        except strategic.StrategicMergeUnsupported as exc:
            raise ApiError(
                415,
                "the body of the request was in an unknown format - accepted media types "
                f"include: {JSON_PATCH}, {MERGE}, {APPLY}",
            ) from exc
        except strategic.StrategicMergeError as exc:
            raise errors.bad_request(str(exc)) from exc
    raise ApiError(415, f"the body of the request was in an unknown format: {kind}")


def _crd_status(crd: Obj) -> Obj:
    """A CRD's status once accepted: names accepted, established, stored versions."""
    spec = crd["spec"]
    stored = [v["name"] for v in spec.get("versions", ()) if v.get("storage")]
    condition = {"status": "True", "lastTransitionTime": now()}
    return {
        "acceptedNames": spec["names"],
        "conditions": [
            condition
            | {"type": "NamesAccepted", "reason": "NoConflicts", "message": "no conflicts found"},
            condition
            | {
                "type": "Established",
                "reason": "InitialNamesAccepted",
                "message": "the initial names have been accepted",
            },
        ],
        "storedVersions": stored,
    }
