"""`kubectl get` rows of Jobs, DaemonSets and ReplicationControllers, as kube prints them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kubesandbox.apiserver.tables.convertor import to_table

NOW = datetime(2026, 1, 10, 12, 0, 0, tzinfo=UTC)
Obj = dict[str, Any]
TEMPLATE = {"spec": {"containers": [{"name": "work", "image": "busybox"}]}}


def stamp(seconds_ago: float) -> str:
    return (NOW - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def row(group: str, plural: str, obj: Obj) -> tuple[list[str], list[Any]]:
    obj["metadata"] = {"name": "x", "namespace": "default", "creationTimestamp": stamp(300)}
    table = to_table(group, plural, [obj], None, now=NOW)
    return [c["name"] for c in table["columnDefinitions"]], table["rows"][0]["cells"]


def job(status: Obj, **spec: Any) -> Obj:
    selector = {"matchLabels": {"batch.kubernetes.io/controller-uid": "u"}}
    return {"spec": {"template": TEMPLATE, "selector": selector, **spec}, "status": status}


def test_job_columns_and_a_complete_job() -> None:
    conditions = [{"type": "Complete", "status": "True"}]
    status = {"succeeded": 3, "startTime": stamp(200), "completionTime": stamp(80)}
    columns, cells = row("batch", "jobs", job(status | {"conditions": conditions}, completions=3))
    assert columns == [
        "Name", "Status", "Completions", "Duration", "Age", "Containers", "Images", "Selector",
    ]  # fmt: skip
    assert cells == [
        "x", "Complete", "3/3", "2m", "5m", "work", "busybox",
        "batch.kubernetes.io/controller-uid=u",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("conditions", "shown"),
    [
        ([], "Running"),
        ([{"type": "Failed", "status": "True"}], "Failed"),
        ([{"type": "FailureTarget", "status": "True"}], "FailureTarget"),
        ([{"type": "SuccessCriteriaMet", "status": "True"}], "SuccessCriteriaMet"),
        ([{"type": "Suspended", "status": "True"}], "Suspended"),
        ([{"type": "Suspended", "status": "False"}], "Running"),
    ],
)
def test_job_status_column(conditions: list[Obj], shown: str) -> None:
    assert row("batch", "jobs", job({"conditions": conditions}))[1][1] == shown


@pytest.mark.parametrize(
    ("spec", "completions"),
    [({"completions": 4}, "1/4"), ({"parallelism": 3}, "1/1 of 3"), ({}, "1/1")],
)
def test_job_completions_column(spec: Obj, completions: str) -> None:
    assert row("batch", "jobs", job({"succeeded": 1}, **spec))[1][2] == completions


def test_a_running_jobs_duration_grows_and_an_unstarted_one_has_none() -> None:
    assert row("batch", "jobs", job({"startTime": stamp(42)}))[1][3] == "42s"
    assert row("batch", "jobs", job({}))[1][3] == ""


def test_daemon_set_columns_and_cells() -> None:
    ds = {
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {"spec": {**TEMPLATE["spec"], "nodeSelector": {"gpu": "yes"}}},
        },
        "status": {"desiredNumberScheduled": 2, "currentNumberScheduled": 2, "numberReady": 1,
                   "updatedNumberScheduled": 2, "numberAvailable": 1},
    }  # fmt: skip
    columns, cells = row("apps", "daemonsets", ds)
    assert columns[:8] == [
        "Name", "Desired", "Current", "Ready", "Up-to-date", "Available", "Node Selector", "Age",
    ]  # fmt: skip
    assert cells == ["x", 2, 2, 1, 2, 1, "gpu=yes", "5m", "work", "busybox", "app=agent"]


def test_replication_controller_cells() -> None:
    rc = {"spec": {"replicas": 2, "selector": {"app": "web"}, "template": TEMPLATE},
          "status": {"replicas": 1}}  # fmt: skip
    columns, cells = row("", "replicationcontrollers", rc)
    assert columns[:5] == ["Name", "Desired", "Current", "Ready", "Age"]
    assert cells == ["x", 2, 1, 0, "5m", "work", "busybox", "app=web"]
