"""Writes: create and update (the main resource, or its status or scale subresource), with
server-owned metadata (uid, resourceVersion, generation), admission and managedFields."""

from __future__ import annotations

import copy
import random
import uuid
from dataclasses import dataclass, field
from typing import Any

from kubesandbox.apiserver import errors
from kubesandbox.apiserver.cluster import admission, scale
from kubesandbox.apiserver.cluster.admission import Admission
from kubesandbox.apiserver.cluster.defaults import apply_create_defaults
from kubesandbox.apiserver.cluster.deletes import Deletes
from kubesandbox.apiserver.cluster.reads import Reads, view
from kubesandbox.apiserver.merging import apply
from kubesandbox.apiserver.registry import CRD_KEY, ResourceType
from kubesandbox.objects import Obj, now

_SUFFIX = "bcdfghjklmnpqrstvwxz2456789"
# Built-in kinds whose strategy sets metadata.generation (others, e.g. ConfigMap, have none).
_GENERATION_KEYS = frozenset(
    {
        "deployments.apps",
        "replicasets.apps",
        "daemonsets.apps",
        "jobs.batch",
        "replicationcontrollers",
        CRD_KEY,
    }
)
_CONFLICT = (
    "the object has been modified; please apply your changes to the latest version and try again"
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


def _releasable(meta: Obj) -> bool:
    """Whether a deleting object has nothing left holding it (finalizers, grace period)."""
    return (
        bool(meta.get("deletionTimestamp"))
        and not meta.get("finalizers")
        and not meta.get("deletionGracePeriodSeconds")
    )


def check_version(
    rt: ResourceType, name: str, sent: Any, old: Obj, message: str = _CONFLICT
) -> None:
    """409 when a write names a resourceVersion other than the stored one."""
    if sent and sent != old["metadata"]["resourceVersion"]:
        raise errors.conflict(rt.group, rt.plural, name, message)


class Writes:
    """The create and update verbs; `write` is the one path every change of an object takes."""

    def __init__(self, reads: Reads, admission: Admission, deletes: Deletes) -> None:
        self.reads = reads
        self.store = reads.store
        self.admission = admission
        self.deletes = deletes

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
        admission.check_type(rt, obj)
        meta = obj.setdefault("metadata", {})
        if rt.namespaced:
            if meta.get("namespace", ns) != ns:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent "
                    "on the request"
                )
            meta["namespace"] = ns
            self.admission.check_namespace_open(ns)
        else:
            meta.pop("namespace", None)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(random.choices(_SUFFIX, k=5))
        admission.check_name(rt, meta)
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
        warnings = self.admission.admit(rt, obj, None, opts.field_validation)
        self.track(rt, None, obj, opts, user_agent, "Apply" if tracked else "Update")
        if not opts.dry_run:
            self.store.put(rt.key, obj)
            self._after_create(rt, obj)
        return WriteResult(view(rt, obj), warnings, created=True)

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
        old = self.reads.existing(rt, ns, name)
        new = copy.deepcopy(body)
        admission.check_type(rt, new)
        meta = new.setdefault("metadata", {})
        if meta.get("name", name) != name:
            raise errors.bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the "
                f"URL ({name})"
            )
        check_version(rt, name, meta.get("resourceVersion"), old)
        return self.write(rt, old, new, opts, subresource, user_agent, "Update")

    def update_scale(
        self,
        rt: ResourceType,
        ns: str,
        name: str,
        body: Obj,
        opts: WriteOptions,
        user_agent: str = "",
    ) -> WriteResult:
        """Write `spec.replicas` of a Scale back into its object."""
        old = self.reads.existing(rt, ns, name)
        new = scale.with_replicas(rt, old, body.get("spec", {}).get("replicas", 0))
        sent = body.get("metadata", {}).get("resourceVersion")
        check_version(rt, name, sent, old, "the object has been modified")
        result = self.write(rt, old, new, opts, "scale", user_agent, "Update")
        return WriteResult(scale.to_scale(rt, result.obj), result.warnings)

    def write(
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
        if subresource == "status":  # old's values are shared: stored objects never change
            status_only = {**old, "metadata": dict(old["metadata"])}
            status_only["status"] = new.get("status", {})
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
        warnings = self.admission.admit(rt, new, old, opts.field_validation)
        self.track(rt, old, new, opts, user_agent, operation, subresource)
        if _comparable(new) == _comparable(old) or opts.dry_run:
            return WriteResult(view(rt, new if opts.dry_run else old), warnings)
        if _releasable(meta):
            self.deletes.remove(rt.key, new)
            return WriteResult(view(rt, new), warnings)
        self.store.put(rt.key, new)
        if rt.key == CRD_KEY:
            self.reads.registry.set_crd(new)
        return WriteResult(view(rt, new), warnings)

    def track(
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
        schema = self.admission.raw_schema(rt)
        tracked = apply.track_update(
            rt.api_version, rt.kind, old, new, manager, operation, subresource, schema
        )
        new["metadata"] = tracked["metadata"]

    def _after_create(self, rt: ResourceType, obj: Obj) -> None:
        """A namespace gets its `default` ServiceAccount; a CRD starts serving its types; an
        object whose owners are all gone is collected."""
        meta = obj["metadata"]
        stored = self.store.get(rt.key, meta.get("namespace", ""), meta["name"])
        if stored is not None:
            self.deletes.collect_if_orphaned(rt.key, stored)
        if rt.plural == "namespaces" and not rt.group:
            sa = {"metadata": {"name": "default"}}
            accounts = self.reads.resource("", "v1", "serviceaccounts")
            self.create(accounts, obj["metadata"]["name"], sa)
        elif rt.key == CRD_KEY:
            self.reads.registry.set_crd(obj)
