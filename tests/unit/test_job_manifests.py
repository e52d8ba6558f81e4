"""Builders of a BigModelJob's children: Service, node pods, PodGroup, and spec problems."""

from __future__ import annotations

from typing import Any

import pytest

from bigmodel.manifests.frameworks.pytorch import node, torchrun_args
from bigmodel.manifests.job import build_pod, build_pod_group, build_service, spec_errors
from support.jobs import make_job


def env_of(pod: dict[str, Any]) -> dict[str, Any]:
    env = pod["spec"]["containers"][0]["env"]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in env}


@pytest.mark.parametrize(
    ("command", "args", "expected"),
    [
        (["python", "train.py"], ["--lr", "3e-4"], ["train.py", "--lr", "3e-4"]),
        (["python3", "-m", "pkg.train"], ["--x"], ["-m", "pkg.train", "--x"]),
        (["python"], ["-m", "pkg.train"], ["-m", "pkg.train"]),
        (["python", "-c", "print(1)"], [], ["--no-python", "python", "-c", "print(1)"]),
        (["python", "-u", "t.py"], [], ["--no-python", "python", "-u", "t.py"]),
        (["/usr/bin/python3", "t.py"], [], ["--no-python", "/usr/bin/python3", "t.py"]),
        (["bash", "-c", "run"], [], ["--no-python", "bash", "-c", "run"]),
        (["python"], [], ["--no-python", "python"]),
    ],
)
def test_the_program_runs_under_torchrun(
    command: list[str], args: list[str], expected: list[str]
) -> None:
    assert torchrun_args(command, args) == expected


def test_node_pods_carry_the_static_torchrun_contract() -> None:
    pod = build_pod(make_job({"procsPerNode": 4, "masterPort": 23456}), node(1))
    env = env_of(pod)
    assert pod["spec"]["containers"][0]["command"] == ["torchrun"]
    assert {k: v for k, v in env.items() if k.startswith("PET_")} == {
        "PET_NNODES": "2",
        "PET_NPROC_PER_NODE": "4",
        "PET_NODE_RANK": "1",
        "PET_MASTER_ADDR": "train-node-0.train",
        "PET_MASTER_PORT": "23456",
    }
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["BIGMODEL_METRICS_PORT"] == "9400"
    assert env["BIGMODEL_METRICS_HOST"] == {"fieldRef": {"fieldPath": "status.podIP"}}


def test_elastic_pods_rendezvous_with_c10d_on_the_job_uid() -> None:
    job = make_job({"nodes": 3, "elastic": {"minNodes": 2, "maxNodes": 4, "maxRestarts": 7}})
    env = env_of(build_pod(job, node(0)))
    assert env["PET_NNODES"] == "2:4"
    assert env["PET_RDZV_BACKEND"] == "c10d"
    assert env["PET_RDZV_ENDPOINT"] == "train-node-0.train:29500"
    assert env["PET_RDZV_ID"] == "u"
    assert env["PET_MAX_RESTARTS"] == "7"


def test_pods_have_hostname_subdomain_labels_and_never_restart_themselves() -> None:
    pod = build_pod(make_job(metadata={"generation": 3}), node(0))
    assert pod["metadata"]["name"] == "train-node-0"
    assert (pod["spec"]["hostname"], pod["spec"]["subdomain"]) == ("train-node-0", "train")
    assert pod["spec"]["restartPolicy"] == "Never"
    assert pod["metadata"]["labels"] == {
        "app.kubernetes.io/name": "bigmodel-job",
        "app.kubernetes.io/instance": "train",
        "app.kubernetes.io/component": "node",
        "app.kubernetes.io/part-of": "bigmodel",
        "app.kubernetes.io/managed-by": "bigmodel-operator",
        "bigmodel.dev/job": "train",
        "bigmodel.dev/node-rank": "0",
        "bigmodel.dev/role": "master",
    }
    assert pod["metadata"]["annotations"] == {"bigmodel.dev/generation": "3"}


def test_parent_labels_and_annotations_flow_down_without_tool_keys() -> None:
    job = make_job(
        metadata={
            "labels": {"team": "nlp", "kopf.zalando.org/x": "y"},
            "annotations": {
                "owner": "ana",
                "kubectl.kubernetes.io/last-applied-configuration": "{}",
                "bigmodel.dev/last-handled-configuration": "{}",
            },
        }
    )
    for child in (build_pod(job, node(1)), build_service(job)):
        assert child["metadata"]["labels"]["team"] == "nlp"
        assert "kopf.zalando.org/x" not in child["metadata"]["labels"]
        assert child["metadata"]["annotations"].get("owner") == "ana"
        assert not any("kubectl" in k for k in child["metadata"]["annotations"])
        assert "bigmodel.dev/last-handled-configuration" not in child["metadata"]["annotations"]


def test_gpus_shm_ports_and_user_settings_are_in_the_pod() -> None:
    job = make_job(
        {
            "gpusPerNode": 8,
            "shmSize": "16Gi",
            "resources": {"requests": {"cpu": "4"}, "limits": {"memory": "8Gi"}},
            "env": [{"name": "NCCL_DEBUG", "value": "WARN"}],
            "volumes": [{"name": "data", "emptyDir": {}}],
            "volumeMounts": [{"name": "data", "mountPath": "/data"}],
            "nodeSelector": {"gpu": "h200"},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
            "priorityClassName": "training",
            "serviceAccountName": "trainer",
            "imagePullSecrets": [{"name": "registry"}],
            "affinity": {"nodeAffinity": {}},
        }
    )
    pod = build_pod(job, node(0))
    spec, main = pod["spec"], pod["spec"]["containers"][0]
    assert main["resources"] == {
        "requests": {"cpu": "4", "nvidia.com/gpu": "8"},
        "limits": {"memory": "8Gi", "nvidia.com/gpu": "8"},
    }
    assert env_of(pod)["PET_NPROC_PER_NODE"] == "8"
    assert env_of(pod)["NCCL_DEBUG"] == "WARN"
    assert {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}} in spec[
        "volumes"
    ]
    assert {"name": "dshm", "mountPath": "/dev/shm"} in main["volumeMounts"]
    assert {"name": "data", "mountPath": "/data"} in main["volumeMounts"]
    assert {"name": "metrics", "containerPort": 9400} in main["ports"]
    assert spec["nodeSelector"] == {"gpu": "h200"}
    assert spec["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists"}]
    assert spec["priorityClassName"] == "training"
    assert spec["serviceAccountName"] == "trainer"
    assert spec["imagePullSecrets"] == [{"name": "registry"}]
    assert spec["affinity"] == {"nodeAffinity": {}}


def test_the_pod_template_overlay_merges_containers_by_name() -> None:
    overlay = {
        "metadata": {"labels": {"extra": "1"}, "annotations": {"a": "b"}},
        "spec": {
            "containers": [
                {"name": "main", "securityContext": {"runAsUser": 1000}},
                {"name": "sidecar", "image": "busybox"},
            ],
            "dnsPolicy": "ClusterFirstWithHostNet",
        },
    }
    pod = build_pod(make_job({"podTemplate": overlay}), node(0))
    main, sidecar = pod["spec"]["containers"]
    assert main["securityContext"] == {"runAsUser": 1000}
    assert main["command"] == ["torchrun"]
    assert sidecar == {"name": "sidecar", "image": "busybox"}
    assert pod["spec"]["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert pod["metadata"]["labels"]["extra"] == "1"
    assert pod["metadata"]["annotations"]["a"] == "b"


def test_headless_service_publishes_pods_before_they_are_ready() -> None:
    service = build_service(make_job())
    assert service["metadata"]["name"] == "train"
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["publishNotReadyAddresses"] is True
    assert service["spec"]["selector"] == {
        "bigmodel.dev/job": "train",
        "app.kubernetes.io/managed-by": "bigmodel-operator",
    }


@pytest.mark.parametrize(
    ("gang", "api", "scheduler", "pod_key"),
    [
        ({"scheduler": "volcano"}, "scheduling.volcano.sh/v1beta1", "volcano",
         ("annotations", "scheduling.k8s.io/group-name")),
        ({"scheduler": "scheduler-plugins", "scheduleTimeoutSeconds": 60},
         "scheduling.x-k8s.io/v1alpha1", "scheduler-plugins-scheduler",
         ("labels", "scheduling.x-k8s.io/pod-group")),
    ],
)  # fmt: skip
def test_gang_scheduling_builds_a_pod_group_and_marks_the_pods(
    gang: dict[str, Any], api: str, scheduler: str, pod_key: tuple[str, str]
) -> None:
    job = make_job({"nodes": 4, "gangScheduling": gang})
    group = build_pod_group(job)
    assert group is not None
    assert (group["apiVersion"], group["kind"], group["metadata"]["name"]) == (
        api,
        "PodGroup",
        "train",
    )
    assert group["spec"]["minMember"] == 4
    pod = build_pod(job, node(2))
    assert pod["spec"]["schedulerName"] == scheduler
    assert pod["metadata"][pod_key[0]][pod_key[1]] == "train"


def test_no_pod_group_without_gang_scheduling() -> None:
    assert build_pod_group(make_job()) is None


def test_elastic_gang_needs_min_nodes() -> None:
    job = make_job({"nodes": 3, "elastic": {"minNodes": 2, "maxNodes": 4}, "gangScheduling": {}})
    group = build_pod_group(job)
    assert group is not None and group["spec"]["minMember"] == 2


def test_a_kueue_queue_label_gives_the_pods_the_plain_pod_group_contract() -> None:
    job = make_job({"nodes": 3}, metadata={"labels": {"kueue.x-k8s.io/queue-name": "team-a"}})
    pod = build_pod(job, node(0))
    assert pod["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a"
    assert pod["metadata"]["labels"]["kueue.x-k8s.io/pod-group-name"] == "train"
    assert pod["metadata"]["annotations"]["kueue.x-k8s.io/pod-group-total-count"] == "3"


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ({"env": [{"name": "A", "value": "1"}, {"name": "BIGMODEL_METRICS_PORT", "value": "1"}]},
         "spec.env[1].name: BIGMODEL_METRICS_PORT is set by the operator"),
        ({"env": [{"name": "PYTHONUNBUFFERED", "value": "0"}]},
         "spec.env[0].name: PYTHONUNBUFFERED is set by the operator"),
        ({"volumes": [{"name": "dshm", "emptyDir": {}}]},
         "spec.volumes[0].name: dshm is the operator's /dev/shm volume"),
        ({"volumeMounts": [{"name": "x", "mountPath": "/dev/shm"}]},
         "spec.volumeMounts[0].mountPath: /dev/shm is set by the operator (use shmSize)"),
        ({"podTemplate": {"spec": {"restartPolicy": "Always"}}},
         "spec.podTemplate.spec.restartPolicy: set by the operator"),
        ({"podTemplate": {"spec": {"containers": [{"name": "main", "command": ["x"]}]}}},
         "spec.podTemplate.spec.containers[0].command: set by the operator (use spec.command)"),
        ({"podTemplate": {"spec": {"containers": [
            {"name": "main", "env": [{"name": "PET_NNODES", "value": "9"}]}]}}},
         "spec.podTemplate.spec.containers[0].env[0].name: PET_NNODES is set by the operator"),
    ],
)  # fmt: skip
def test_operator_owned_settings_are_errors_naming_the_field(
    spec: dict[str, Any], error: str
) -> None:
    assert spec_errors(make_job(spec)) == [error]


def test_a_plain_job_has_no_spec_errors() -> None:
    assert spec_errors(make_job()) == []
