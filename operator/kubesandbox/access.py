"""How the kubelet and the built-in controllers use the cluster: small, named interfaces.

They run in the API server's process and call it directly, without HTTP. A resource is named
by its storage key (`pods`, `replicasets.apps`, `endpointslices.discovery.k8s.io`): built-in
types only. The API server's `InProcessClient` implements every interface here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import Protocol

from kubesandbox.objects import Obj

Event = tuple[str, Obj]  # (ADDED | MODIFIED | DELETED, the object)


class Rejected(Exception):
    """A call the cluster refused (not found, conflict, invalid): a later event retries."""


class ClusterAccess(Protocol):
    """Read, write and watch objects; writes raise `Rejected`."""

    def get(self, resource: str, namespace: str, name: str) -> Obj | None:
        """The stored object, or None."""

    def create(self, resource: str, namespace: str, obj: Obj, user_agent: str = "") -> Obj:
        """Create an object; returns it as stored."""

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

    def delete(
        self, resource: str, namespace: str, name: str, grace_seconds: int | None = None
    ) -> None:
        """Delete an object in the background (`grace_seconds` None: the pod's own period)."""

    def watch(self, resource: str) -> AsyncIterator[Event]:
        """The current objects as ADDED events, then every change, in all namespaces."""


class KubeletAccess(ClusterAccess, Protocol):
    """What nodes need besides: a say in how their pods are deleted."""

    def hold_pod_deletion(self, graceful: Callable[[Obj], bool]) -> None:
        """Deleting a pod for which `graceful(pod)` holds only marks it terminating (with its
        grace period): its node stops the processes, then deletes it with grace 0."""


class ControllerAccess(ClusterAccess, Protocol):
    """What controllers need besides: the store's indexes."""

    def objects(
        self, resource: str, namespace: str | None, labels: Mapping[str, str] | None = None
    ) -> list[Obj]:
        """The objects of a resource in one namespace, or all with None (that carry
        `labels`, when given)."""

    def by_uid(self, uid: str) -> tuple[str, Obj] | None:
        """(resource, object) of a uid, or None."""

    def dependents(self, uid: str, resource: str) -> list[Obj]:
        """The objects of `resource` that name `uid` as an owner."""
