"""Deletes: preconditions, finalizers, grace periods, propagation to dependents (garbage
collection, decided by `gc`), namespace teardown and the removal of a CRD's objects."""

from __future__ import annotations

import builtins
from collections.abc import Callable

from kubesandbox.apiserver import errors
from kubesandbox.apiserver.cluster import gc
from kubesandbox.apiserver.cluster.reads import Reads, view
from kubesandbox.apiserver.registry import CRD_KEY, ResourceType
from kubesandbox.objects import Obj, now

RETURN_DELETED = frozenset({"pods", "services", "serviceaccounts", "persistentvolumeclaims"})
"""Resources whose delete answers with the deleted object, not a Success Status (kube's
`ReturnDeletedObject` stores; typed clients parse the answer as the object)."""


class Deletes:
    """The delete verbs, and the removal of objects once nothing holds them."""

    def __init__(self, reads: Reads) -> None:
        self.reads = reads
        self.store = reads.store
        # Each says whether a pod's node stops it first: such pods are only marked terminating.
        self.pod_deletion_hooks: builtins.list[Callable[[Obj], bool]] = []

    def delete(
        self,
        rt: ResourceType,
        ns: str,
        name: str,
        options: Obj | None = None,
        dry_run: bool = False,
    ) -> Obj:
        """Delete an object: returns it while finalizers hold it; once gone, the object for
        `RETURN_DELETED` resources, else a Success Status."""
        options = options or {}
        obj = self.reads.existing(rt, ns, name)
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
            return view(rt, obj)
        gone = self._delete(
            rt.key, obj, gc.propagation_policy(options), options.get("gracePeriodSeconds")
        )
        if gone and rt.key in RETURN_DELETED:
            return view(rt, obj)
        if gone:
            return errors.success(rt.group, rt.plural, name, meta["uid"])
        return view(rt, self.store.get(rt.key, meta.get("namespace", ""), name) or obj)

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
        listed = self.reads.list(rt, ns, label_selector, field_selector)
        for item in [] if dry_run else listed["items"]:
            meta = item["metadata"]
            live = self.store.get(rt.key, meta.get("namespace", ""), meta["name"])
            if live is not None:
                self._delete(
                    rt.key, live, gc.propagation_policy(options), options.get("gracePeriodSeconds")
                )
        return listed

    def collect_if_orphaned(self, key: str, obj: Obj) -> None:
        """Delete (in the background) an object created with owner references none of
        whose owners exists: created after its owners' deletion, e.g. by a controller that
        acted on a stale view. Kubernetes' garbage collector collects such a dependent too."""
        refs = obj["metadata"].get("ownerReferences") or ()
        if refs and not any(self.store.by_uid(r.get("uid", "")) for r in refs):
            self._delete(key, obj, "Background", None)

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
        self.remove(key, obj)
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

    def remove(self, key: str, obj: Obj) -> None:
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
            self.remove(key, obj)

    def _empty_namespace(self, ns: str) -> None:
        """Delete what a terminating namespace holds; remove it once nothing is left."""
        keys = self.store.namespaces_in_use(ns)
        for key in keys:
            for obj in list(self.store.objects(key, ns)):
                if not obj["metadata"].get("deletionTimestamp"):
                    self._delete(key, obj, "Background", 0)
        namespace = self.store.get("namespaces", "", ns)
        if namespace and not self.store.namespaces_in_use(ns):
            self.remove("namespaces", namespace)

    def _drop_crd(self, crd: Obj) -> None:
        """Stop serving a deleted CRD's resources and remove their objects."""
        registry = self.reads.registry
        types = [rt for rt in registry if rt.crd == crd["metadata"]["name"]]
        registry.remove_crd(crd["metadata"]["name"])
        for key in {rt.key for rt in types}:
            for obj in list(self.store.objects(key)):
                meta = obj["metadata"]
                self.store.remove(key, meta.get("namespace", ""), meta["name"])
