"""Deletion through the sandbox API: garbage collection of dependents (background,
foreground, orphan), finalizers, deleteCollection, and deleting a CRD with its objects."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException
from sandbox_objects import configmap

pytestmark = pytest.mark.integration


def test_deleting_an_owner_collects_its_dependents(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    owner = core.create_namespaced_config_map(ns, configmap("owner"))
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid}
    core.create_namespaced_config_map(ns, configmap("dependent", ownerReferences=[ref]))
    core.delete_namespaced_config_map("owner", ns)
    with pytest.raises(ApiException) as exc:
        core.read_namespaced_config_map("dependent", ns)
    assert exc.value.status == 404


def test_foreground_deletion_waits_for_dependents(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    owner = core.create_namespaced_config_map(ns, configmap("fg-owner"))
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "fg-owner", "uid": owner.metadata.uid}
    core.create_namespaced_config_map(
        ns, configmap("fg-dep", ownerReferences=[ref], finalizers=["test/hold"])
    )
    core.delete_namespaced_config_map("fg-owner", ns, propagation_policy="Foreground")
    held = core.read_namespaced_config_map("fg-owner", ns)
    assert "foregroundDeletion" in held.metadata.finalizers
    core.patch_namespaced_config_map("fg-dep", ns, {"metadata": {"finalizers": None}})
    with pytest.raises(ApiException):
        core.read_namespaced_config_map("fg-owner", ns)


def test_a_finalizer_holds_deletion_until_removed(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(ns, configmap("held", finalizers=["example.com/hold"]))
    core.delete_namespaced_config_map("held", ns)
    held = core.read_namespaced_config_map("held", ns)
    assert held.metadata.deletion_timestamp is not None
    # finalizers merge under strategic merge patch: remove them with a JSON patch
    core.patch_namespaced_config_map("held", ns, [{"op": "remove", "path": "/metadata/finalizers"}])
    with pytest.raises(ApiException) as exc:
        core.read_namespaced_config_map("held", ns)
    assert exc.value.status == 404


def test_delete_collection_removes_the_selected_objects(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    for name, tier in (("d1", "web"), ("d2", "web"), ("d3", "db")):
        core.create_namespaced_config_map(ns, configmap(name, {"tier": tier}))
    core.delete_collection_namespaced_config_map(ns, label_selector="tier=web")
    assert [i.metadata.name for i in core.list_namespaced_config_map(ns).items] == ["d3"]


def test_orphan_deletion_keeps_dependents_without_the_owner(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    owner = core.create_namespaced_config_map(ns, configmap("o-owner"))
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "o-owner", "uid": owner.metadata.uid}
    core.create_namespaced_config_map(ns, configmap("o-dep", ownerReferences=[ref]))
    stream = watch.Watch().stream(
        core.list_namespaced_config_map,
        ns,
        field_selector="metadata.name=o-owner",
        resource_version=owner.metadata.resource_version,
        timeout_seconds=1,
    )
    core.delete_namespaced_config_map("o-owner", ns, propagation_policy="Orphan")
    seen = [(e["type"], e["object"].metadata.finalizers) for e in stream]
    assert seen == [("MODIFIED", ["orphan"]), ("DELETED", None)]
    assert core.read_namespaced_config_map("o-dep", ns).metadata.owner_references is None


def _widget_crd(group: str) -> dict[str, Any]:
    schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


def test_deleting_a_crd_removes_its_objects_and_discovery(
    sandbox: Any, api: client.ApiClient, ns: str
) -> None:
    group, custom = f"g{uuid.uuid4().hex[:6]}.example.com", client.CustomObjectsApi(api)
    client.ApiextensionsV1Api(api).create_custom_resource_definition(_widget_crd(group))
    widget = {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "w"}}
    custom.create_namespaced_custom_object(group, "v1", ns, "widgets", widget)
    assert f"widgets.{group}" in _api_resources(sandbox)
    sandbox.kubectl("delete", "crd", f"widgets.{group}")
    assert f"widgets.{group}" not in _api_resources(sandbox)
    with pytest.raises(ApiException) as exc:
        custom.get_namespaced_custom_object(group, "v1", ns, "widgets", "w")
    assert exc.value.status == 404
    client.ApiextensionsV1Api(api).create_custom_resource_definition(_widget_crd(group))
    listed = custom.list_namespaced_custom_object(group, "v1", ns, "widgets")
    assert listed["items"] == []  # recreating the CRD does not bring old objects back


def _api_resources(sandbox: Any) -> list[str]:
    out = sandbox.kubectl("api-resources", "-o", "name", "--cached=false").stdout
    return str(out).split()
