"""Responses shaped as kube-apiserver sends them, checked with the official client's typed
calls (whose models reject a missing required field or a Status where an object belongs):
deletes answer with the object or a Status per resource, nodes carry a full nodeInfo, and
error Status bodies have kube's details and field order."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from kubesandbox.testing import RunningSandbox

pytestmark = pytest.mark.integration

STATUS_ORDER = ["kind", "apiVersion", "metadata", "status", "message", "reason", "details", "code"]


@pytest.fixture
def core(sandbox: RunningSandbox) -> client.CoreV1Api:
    """The typed core/v1 API of the official client, on the session sandbox."""
    return client.CoreV1Api(config.new_client_from_config(str(sandbox.kubeconfig)))


def service(name: str) -> client.V1Service:
    port = client.V1ServicePort(port=80, target_port=8080)
    return client.V1Service(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1ServiceSpec(selector={"app": name}, ports=[port]),
    )


def refused(call: Any, *args: Any) -> dict[str, Any]:
    """The Status body of a call the API refuses."""
    with pytest.raises(ApiException) as raised:
        call(*args)
    body: dict[str, Any] = json.loads(raised.value.body)
    assert body["code"] == raised.value.status
    return body


def test_a_service_is_read_and_deleted_as_a_service(core: client.CoreV1Api, ns: str) -> None:
    core.create_namespaced_service(ns, service("web"))
    read = core.read_namespaced_service("web", ns)
    assert read.spec.cluster_ip.startswith("127.96.")
    deleted = core.delete_namespaced_service("web", ns)
    assert isinstance(deleted, client.V1Service)
    assert (deleted.metadata.name, deleted.metadata.uid) == ("web", read.metadata.uid)


def test_a_config_map_is_deleted_with_a_success_status(
    sandbox: RunningSandbox, core: client.CoreV1Api, ns: str
) -> None:
    core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata={"name": "cm"}))
    uid = core.read_namespaced_config_map("cm", ns).metadata.uid
    answer = sandbox.kubectl("delete", "--raw", f"/api/v1/namespaces/{ns}/configmaps/cm")
    assert json.loads(answer.stdout) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {"name": "cm", "kind": "configmaps", "uid": uid},
    }


def test_nodes_list_as_typed_nodes(core: client.CoreV1Api) -> None:
    nodes = core.list_node().items
    assert {"sandbox-node-0", "sandbox-node-1"} <= {n.metadata.name for n in nodes}
    for node in nodes:
        info = node.status.node_info
        assert info.machine_id and info.system_uuid and info.boot_id and info.kubelet_version


def test_creating_twice_is_409_already_exists_with_kubes_body(
    core: client.CoreV1Api, ns: str
) -> None:
    core.create_namespaced_service(ns, service("twice"))
    body = refused(core.create_namespaced_service, ns, service("twice"))
    assert list(body) == STATUS_ORDER
    assert body["reason"] == "AlreadyExists"
    assert body["message"] == 'services "twice" already exists'
    assert body["details"] == {"name": "twice", "kind": "services"}
    assert list(body["details"]) == ["name", "kind"]


def test_a_missing_object_is_404_not_found_naming_it(core: client.CoreV1Api, ns: str) -> None:
    body = refused(core.read_namespaced_pod, "ghost", ns)
    assert (body["reason"], body["details"]) == ("NotFound", {"name": "ghost", "kind": "pods"})
    assert list(body) == STATUS_ORDER


def test_a_stale_update_is_409_conflict_with_group_and_kind(
    sandbox: RunningSandbox, ns: str
) -> None:
    apps = client.AppsV1Api(config.new_client_from_config(str(sandbox.kubeconfig)))
    labels = {"app": "d"}
    template = client.V1PodTemplateSpec(
        metadata=client.V1ObjectMeta(labels=labels),
        spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="sim")]),
    )
    spec = client.V1DeploymentSpec(
        replicas=0, selector=client.V1LabelSelector(match_labels=labels), template=template
    )
    created = apps.create_namespaced_deployment(
        ns, client.V1Deployment(metadata=client.V1ObjectMeta(name="d"), spec=spec)
    )
    created.metadata.resource_version = "1"
    body = refused(apps.replace_namespaced_deployment, "d", ns, created)
    assert body["reason"] == "Conflict"
    assert list(body["details"]) == ["name", "group", "kind"]
    assert body["details"] == {"name": "d", "group": "apps", "kind": "deployments"}


def test_an_invalid_object_is_422_with_its_kind_and_causes(sandbox: RunningSandbox) -> None:
    name = f"Bad_{uuid.uuid4().hex[:4]}"  # not a valid object name
    api = client.CoreV1Api(config.new_client_from_config(str(sandbox.kubeconfig)))
    body = refused(api.create_namespace, client.V1Namespace(metadata={"name": name}))
    assert body["reason"] == "Invalid"
    assert list(body["details"]) == ["name", "kind", "causes"]
    assert body["details"]["kind"] == "Namespace"
    assert body["details"]["causes"][0]["field"] == "metadata.name"
