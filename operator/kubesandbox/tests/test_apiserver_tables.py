"""Server-side Tables: the columns and cells `kubectl get` shows, as kube-apiserver prints them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kubesandbox.apiserver.tables.convertor import to_table
from kubesandbox.apiserver.tables.format import format_selector, human_duration

NOW = datetime(2026, 1, 10, 12, 0, 0, tzinfo=UTC)
Obj = dict[str, Any]


def stamp(ago: timedelta) -> str:
    return (NOW - ago).strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(name: str, ago: timedelta = timedelta(minutes=5), **extra: Any) -> Obj:
    return {"name": name, "namespace": "default", "creationTimestamp": stamp(ago), **extra}


def table(group: str, plural: str, obj: Obj, crd: Obj | None = None, **kwargs: Any) -> Obj:
    return to_table(group, plural, [obj], crd, now=NOW, **kwargs)


def columns(result: Obj) -> list[str]:
    return [c["name"] for c in result["columnDefinitions"]]


def wide(result: Obj) -> list[str]:
    return [c["name"] for c in result["columnDefinitions"] if c["priority"] == 1]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (5, "5s"),
        (119, "119s"),
        (192, "3m12s"),
        (300, "5m"),
        (45 * 60, "45m"),
        (5 * 3600 + 60, "5h1m"),
        (20 * 3600, "20h"),
        (2 * 86400, "2d"),
        (3 * 86400 + 7200, "3d2h"),
        (40 * 86400, "40d"),
        (800 * 86400, "2y70d"),
        (-1, "0s"),
        (-5, "<invalid>"),
    ],
)
def test_ages_read_like_kubectl(seconds: int, text: str) -> None:
    assert human_duration(seconds) == text


RUNNING_POD: Obj = {
    "metadata": meta("job-node-0"),
    "spec": {"containers": [{"name": "trainer"}, {"name": "sidecar"}], "nodeName": "sandbox"},
    "status": {
        "phase": "Running",
        "podIPs": [{"ip": "127.0.1.2"}],
        "containerStatuses": [
            {"name": "trainer", "ready": True, "restartCount": 2, "state": {"running": {}},
             "lastState": {"terminated": {"finishedAt": stamp(timedelta(seconds=30))}}},
            {"name": "sidecar", "ready": False, "restartCount": 0,
             "state": {"waiting": {"reason": "CrashLoopBackOff"}}},
        ],
    },
}  # fmt: skip


def test_pod_columns_and_cells() -> None:
    result = table("", "pods", RUNNING_POD)
    assert columns(result) == [
        "Name", "Ready", "Status", "Restarts", "Age",
        "IP", "Node", "Nominated Node", "Readiness Gates",
    ]  # fmt: skip
    assert wide(result) == ["IP", "Node", "Nominated Node", "Readiness Gates"]
    assert result["rows"][0]["cells"] == [
        "job-node-0", "1/2", "CrashLoopBackOff", "2 (30s ago)", "5m",
        "127.0.1.2", "sandbox", "<none>", "<none>",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("status", "shown"),
    [
        ({"phase": "Pending"}, "Pending"),
        (
            {
                "phase": "Succeeded",
                "containerStatuses": [{"state": {"terminated": {"reason": "Completed"}}}],
            },
            "Completed",
        ),
        (
            {"phase": "Failed", "containerStatuses": [{"state": {"terminated": {"exitCode": 3}}}]},
            "ExitCode:3",
        ),
        ({"phase": "Failed", "reason": "Evicted"}, "Evicted"),
    ],
)
def test_pod_status_column(status: Obj, shown: str) -> None:
    pod = {"metadata": meta("p"), "spec": {"containers": [{"name": "c"}]}, "status": status}
    assert table("", "pods", pod)["rows"][0]["cells"][2] == shown


def test_deleted_pods_show_terminating() -> None:
    pod = {**RUNNING_POD, "metadata": meta("p", deletionTimestamp=stamp(timedelta(0)))}
    assert table("", "pods", pod)["rows"][0]["cells"][2] == "Terminating"


def test_service_cells() -> None:
    service = {
        "metadata": meta("job"),
        "spec": {"type": "ClusterIP", "clusterIPs": ["None"], "selector": {"app": "x"},
                 "ports": [{"port": 29500, "protocol": "TCP"}, {"port": 80, "nodePort": 30080}]},
    }  # fmt: skip
    result = table("", "services", service)
    assert columns(result) == [
        "Name",
        "Type",
        "Cluster-IP",
        "External-IP",
        "Port(s)",
        "Age",
        "Selector",
    ]
    assert result["rows"][0]["cells"] == [
        "job", "ClusterIP", "None", "<none>", "29500/TCP,80:30080/TCP", "5m", "app=x",
    ]  # fmt: skip


def test_deployment_cells() -> None:
    deployment = {
        "metadata": meta("svc", timedelta(days=2)),
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "svc"}},
                 "template": {"spec": {"containers": [{"name": "server", "image": "img:1"}]}}},
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
    }  # fmt: skip
    result = table("apps", "deployments", deployment)
    assert columns(result)[:5] == ["Name", "Ready", "Up-to-date", "Available", "Age"]
    assert result["rows"][0]["cells"] == ["svc", "2/3", 3, 2, "2d", "server", "img:1", "app=svc"]


def test_replica_set_node_and_namespace_cells() -> None:
    replica_set = {"metadata": meta("rs"), "spec": {"replicas": 2}, "status": {"replicas": 2}}
    assert table("apps", "replicasets", replica_set)["rows"][0]["cells"][:5] == [
        "rs",
        2,
        2,
        0,
        "5m",
    ]
    node = {
        "metadata": meta("sandbox", labels={"node-role.kubernetes.io/control-plane": ""}),
        "status": {"conditions": [{"type": "Ready", "status": "True"}],
                   "nodeInfo": {"kubeletVersion": "v1.33.0"},
                   "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}]},
    }  # fmt: skip
    assert table("", "nodes", node)["rows"][0]["cells"][:6] == [
        "sandbox", "Ready", "control-plane", "5m", "v1.33.0", "127.0.0.1",
    ]  # fmt: skip
    namespace = {"metadata": meta("default"), "status": {"phase": "Active"}}
    assert table("", "namespaces", namespace)["rows"][0]["cells"] == ["default", "Active", "5m"]


def test_configmap_and_secret_count_their_data() -> None:
    configmap = {"metadata": meta("c"), "data": {"a": "1"}, "binaryData": {"b": "AA=="}}
    assert table("", "configmaps", configmap)["rows"][0]["cells"] == ["c", 2, "5m"]
    secret = {"metadata": meta("s"), "type": "Opaque", "data": {"a": "MQ=="}}
    assert table("", "secrets", secret)["rows"][0]["cells"] == ["s", "Opaque", 1, "5m"]


def test_event_cells() -> None:
    event = {
        "metadata": meta("job.1"),
        "involvedObject": {"kind": "TrainJob", "name": "job"},
        "type": "Warning",
        "reason": "StragglerDetected",
        "message": "node 1 is slow ",
        "source": {"component": "my-operator"},
        "firstTimestamp": stamp(timedelta(minutes=3)),
        "lastTimestamp": stamp(timedelta(seconds=10)),
        "count": 4,
    }
    result = table("", "events", event)
    assert columns(result)[:4] == ["Last Seen", "Type", "Reason", "Object"]
    assert result["rows"][0]["cells"] == [
        "10s", "Warning", "StragglerDetected", "trainjob/job", "", "my-operator",
        "node 1 is slow", "3m", 4, "job.1",
    ]  # fmt: skip


def test_api_service_cells() -> None:
    local = {"metadata": meta("v1.apps"), "spec": {"group": "apps", "version": "v1"}}
    result = table("apiregistration.k8s.io", "apiservices", local)
    assert columns(result) == ["Name", "Service", "Available", "Age"]
    assert result["rows"][0]["cells"] == ["v1.apps", "Local", "Unknown", "5m"]
    down = {
        "metadata": meta("v1beta1.metrics.k8s.io"),
        "spec": {"service": {"namespace": "kube-system", "name": "metrics-server"}},
        "status": {"conditions": [
            {"type": "Available", "status": "False", "reason": "MissingEndpoints"}
        ]},
    }  # fmt: skip
    assert table("apiregistration.k8s.io", "apiservices", down)["rows"][0]["cells"][1:3] == [
        "kube-system/metrics-server",
        "False (MissingEndpoints)",
    ]


@pytest.mark.parametrize(
    ("spec", "cells"),
    [
        ({"minAvailable": 1}, ["operator", 1, "N/A", 0, "5m"]),
        ({"maxUnavailable": "25%"}, ["operator", "N/A", "25%", 0, "5m"]),
    ],
    ids=["min-available", "max-unavailable"],
)
def test_pod_disruption_budget_cells(spec: Obj, cells: list[Any]) -> None:
    result = table("policy", "poddisruptionbudgets", {"metadata": meta("operator"), "spec": spec})
    assert columns(result) == [
        "Name", "Min Available", "Max Unavailable", "Allowed Disruptions", "Age",
    ]  # fmt: skip
    assert result["rows"][0]["cells"] == cells


def test_other_builtins_get_name_and_created_at() -> None:
    role = {"metadata": meta("reader", timedelta(0))}
    result = table("rbac.authorization.k8s.io", "roles", role)
    assert columns(result) == ["Name", "Created At"]
    assert result["rows"][0]["cells"] == ["reader", "2026-01-10T12:00:00Z"]


CRD: Obj = {
    "spec": {
        "versions": [
            {
                "name": "v1alpha1",
                "served": True,
                "storage": True,
                "additionalPrinterColumns": [
                    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                    {"name": "Nodes", "type": "integer", "jsonPath": ".spec.nodes"},
                    {
                        "name": "S",
                        "type": "number",
                        "jsonPath": ".status.telemetry.s",
                        "priority": 1,
                    },
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                ],
            }
        ]
    }
}
JOB: Obj = {"metadata": meta("train"), "spec": {"nodes": 2}, "status": {"phase": "Running"}}


def test_custom_resources_use_printer_columns() -> None:
    result = table("train.example.com", "trainjobs", JOB, CRD)
    assert columns(result) == ["Name", "Phase", "Nodes", "S", "Age"]
    assert wide(result) == ["S"]
    assert result["rows"][0]["cells"] == ["train", "Running", 2, None, "5m"]


def test_custom_resources_without_columns_get_age() -> None:
    crd = {"spec": {"versions": [{"name": "v1", "served": True, "storage": True}]}}
    result = table("example.com", "widgets", JOB, crd)
    assert columns(result) == ["Name", "Age"]
    assert result["rows"][0]["cells"] == ["train", "5m"]


@pytest.mark.parametrize(
    ("include", "expected"),
    [
        (
            "Metadata",
            {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": JOB["metadata"],
            },
        ),
        ("Object", JOB),
        ("None", None),
    ],
)
def test_rows_carry_the_requested_object(include: str, expected: Obj | None) -> None:
    row = table("train.example.com", "trainjobs", JOB, CRD, include_object=include)["rows"][0]
    assert row.get("object") == expected


def test_table_envelope() -> None:
    result = to_table("", "pods", [], None, resource_version="42")
    assert (result["kind"], result["apiVersion"], result["rows"]) == ("Table", "meta.k8s.io/v1", [])
    assert result["metadata"] == {"resourceVersion": "42"}
    assert set(result["columnDefinitions"][0]) == {
        "name",
        "type",
        "format",
        "description",
        "priority",
    }
    assert result["columnDefinitions"][0]["description"].startswith("Name must be unique")


def test_selectors_print_like_kubectl() -> None:
    selector = {
        "matchLabels": {"b": "2", "a": "1"},
        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["y", "x"]},
                             {"key": "gpu", "operator": "DoesNotExist"}],
    }  # fmt: skip
    assert format_selector(selector) == "a=1,b=2,tier in (x,y),!gpu"
    assert format_selector(None) == "<none>"
