"""Garbage-collection decisions and the deletion semantics built on them."""

from __future__ import annotations

from kubesandbox.apiserver.cluster import Cluster, gc


def _dep(*uids: str) -> dict[str, object]:
    return {"metadata": {"name": "d", "ownerReferences": [{"uid": u} for u in uids]}}


def test_a_dependent_with_a_live_second_owner_is_unlinked_not_deleted() -> None:
    assert gc.dependent_action(_dep("gone", "alive"), "gone", {"alive"}.__contains__) == "unlink"
    assert gc.dependent_action(_dep("gone"), "gone", {"alive"}.__contains__) == "delete"


def test_propagation_policy_honours_deprecated_orphan_dependents() -> None:
    assert gc.propagation_policy({"orphanDependents": True}) == "Orphan"
    assert gc.propagation_policy({}) == "Background"


def test_orphan_deletion_keeps_dependents_without_the_owner_reference() -> None:
    cluster = Cluster()
    rt = cluster.reads.resource("", "v1", "configmaps")
    owner = cluster.writes.create(rt, "default", {"metadata": {"name": "o"}}).obj
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": owner["metadata"]["uid"]}
    cluster.writes.create(rt, "default", {"metadata": {"name": "d", "ownerReferences": [ref]}})
    cluster.deletes.delete(rt, "default", "o", {"propagationPolicy": "Orphan"})
    assert "ownerReferences" not in cluster.reads.get(rt, "default", "d")["metadata"]


def test_a_dependent_created_after_its_owner_was_deleted_is_collected() -> None:
    cluster = Cluster()
    rt = cluster.reads.resource("", "v1", "configmaps")
    owner = cluster.writes.create(rt, "default", {"metadata": {"name": "o"}}).obj
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": owner["metadata"]["uid"]}
    cluster.deletes.delete(rt, "default", "o")
    cluster.writes.create(rt, "default", {"metadata": {"name": "late", "ownerReferences": [ref]}})
    assert cluster.store.get("configmaps", "default", "late") is None


def test_a_dependent_with_a_live_owner_is_kept_at_creation() -> None:
    cluster = Cluster()
    rt = cluster.reads.resource("", "v1", "configmaps")
    owner = cluster.writes.create(rt, "default", {"metadata": {"name": "o"}}).obj
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": owner["metadata"]["uid"]}
    cluster.writes.create(rt, "default", {"metadata": {"name": "d", "ownerReferences": [ref]}})
    assert cluster.store.get("configmaps", "default", "d") is not None


def test_deleting_a_namespace_removes_its_objects() -> None:
    cluster = Cluster()
    ns_rt, cm_rt = (
        cluster.reads.resource("", "v1", "namespaces"),
        cluster.reads.resource("", "v1", "configmaps"),
    )
    cluster.writes.create(ns_rt, "", {"metadata": {"name": "team"}})
    cluster.writes.create(cm_rt, "team", {"metadata": {"name": "c"}})
    cluster.deletes.delete(ns_rt, "", "team")
    assert cluster.store.get("namespaces", "", "team") is None
    assert cluster.store.count("configmaps", "team") == 0
