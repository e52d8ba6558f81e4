"""The API semantics of the sandbox, free of HTTP: a `Cluster` and its verbs.

`reads` (get, list, watch), `writes` (create, update, the status and scale subresources),
`patches` (JSON, merge, strategic merge, server-side apply) and `deletes` (finalizers, grace
periods, garbage collection, namespaces) share one store and one registry of served types.
Every write passes `admission`; `defaults` fills new built-in objects; `gc` decides what
deleting an owner does to its dependents.
"""

from __future__ import annotations

from kubesandbox.apiserver.cluster.admission import Admission
from kubesandbox.apiserver.cluster.deletes import Deletes
from kubesandbox.apiserver.cluster.patch import Patches
from kubesandbox.apiserver.cluster.reads import Reads
from kubesandbox.apiserver.cluster.writes import WriteOptions, WriteResult, Writes
from kubesandbox.apiserver.registry import Registry
from kubesandbox.apiserver.store import Store

__all__ = ["Cluster", "WriteOptions", "WriteResult"]

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


class Cluster:
    """All the state of one sandbox, and the operations of the Kubernetes API on it."""

    def __init__(self, history: int = 20_000) -> None:
        self.store = Store(history)
        self.registry = Registry.with_builtins()
        self.reads = Reads(self.store, self.registry)
        self.deletes = Deletes(self.reads)
        self.writes = Writes(self.reads, Admission(self.reads), self.deletes)
        self.patches = Patches(self.writes)
        namespaces = self.reads.resource("", "v1", "namespaces")
        for ns in SYSTEM_NAMESPACES:
            self.writes.create(namespaces, "", {"metadata": {"name": ns}})
