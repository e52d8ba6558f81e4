"""The cluster as the kubelet and the built-in controllers see it (`kubesandbox.access`):
direct calls on the `Cluster`, built-in resources by storage key, no HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping

from kubesandbox.access import Event
from kubesandbox.apiserver.cluster import Cluster
from kubesandbox.apiserver.registry import BUILTINS, ResourceType
from kubesandbox.objects import Obj


class InProcessClient:
    """Implements `ClusterAccess`, `KubeletAccess` and `ControllerAccess` over a `Cluster`."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self._types = {rt.key: rt for rt in BUILTINS}

    def _type(self, resource: str) -> ResourceType:
        return self._types[resource]

    def get(self, resource: str, namespace: str, name: str) -> Obj | None:
        """The stored object, or None."""
        return self.cluster.store.get(resource, namespace, name)

    def create(self, resource: str, namespace: str, obj: Obj, user_agent: str = "") -> Obj:
        """Create an object; returns it as stored."""
        writes = self.cluster.writes
        return writes.create(self._type(resource), namespace, obj, user_agent=user_agent).obj

    def update(
        self,
        resource: str,
        namespace: str,
        name: str,
        obj: Obj,
        user_agent: str = "",
        *,
        status: bool = False,
    ) -> Obj:
        """Replace an object (its status subresource with `status`); returns it as stored."""
        rt, subresource = self._type(resource), "status" if status else ""
        writes = self.cluster.writes
        return writes.update(
            rt, namespace, name, obj, subresource=subresource, user_agent=user_agent
        ).obj

    def delete(
        self, resource: str, namespace: str, name: str, grace_seconds: int | None = None
    ) -> None:
        """Delete an object in the background (`grace_seconds` None: the pod's own period)."""
        options = {} if grace_seconds is None else {"gracePeriodSeconds": grace_seconds}
        self.cluster.deletes.delete(self._type(resource), namespace, name, options)

    async def watch(self, resource: str) -> AsyncIterator[Event]:
        """The current objects as ADDED events, then every change, in all namespaces."""
        watcher = self.cluster.reads.watch(self._type(resource), None)
        try:
            while (item := await watcher.queue.get()) is not None:
                yield item
        finally:
            self.cluster.store.unwatch(watcher)

    def hold_pod_deletion(self, graceful: Callable[[Obj], bool]) -> None:
        """Deleting a pod for which `graceful(pod)` holds only marks it terminating."""
        self.cluster.deletes.pod_deletion_hooks.append(graceful)

    def objects(
        self, resource: str, namespace: str | None, labels: Mapping[str, str] | None = None
    ) -> list[Obj]:
        """The objects of a resource in one namespace, or all with None (that carry
        `labels`, when given)."""
        wanted = {key: (value,) for key, value in (labels or {}).items()}
        return list(self.cluster.store.objects(resource, namespace, wanted))

    def by_uid(self, uid: str) -> tuple[str, Obj] | None:
        """(resource, object) of a uid, or None."""
        return self.cluster.store.by_uid(uid)

    def dependents(self, uid: str, resource: str) -> list[Obj]:
        """The objects of `resource` that name `uid` as an owner."""
        return [obj for key, obj in self.cluster.store.dependents(uid) if key == resource]
