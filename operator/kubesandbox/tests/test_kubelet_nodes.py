"""Node objects as a kubelet registers them: typed clients accept them (every field the
Kubernetes models require), capacity as configured, an identity per node."""

from __future__ import annotations

from kubernetes.client import V1Node

from kubesandbox.kubelet.nodes import Capacity, node_object


def test_the_official_clients_node_model_accepts_a_node() -> None:
    node = V1Node.from_dict(node_object("n", 2, {}, [], Capacity("4", 1024)))
    info = node.status.node_info
    assert info.machine_id and info.system_uuid and info.boot_id
    assert info.kube_proxy_version == ""  # deprecated: kubelets leave it empty
    assert node.status.capacity == {
        "cpu": "4",
        "memory": "1024Ki",
        "pods": "110",
        "nvidia.com/gpu": "2",
        "ephemeral-storage": "100Gi",
    }


def test_each_node_has_its_own_machine_id_and_keeps_it() -> None:
    def ids(name: str) -> tuple[str, str]:
        info = node_object(name, 0, {}, [], Capacity("1", 1))["status"]["nodeInfo"]
        return info["machineID"], info["systemUUID"]

    assert ids("a") != ids("b")
    assert ids("a") == ids("a")
