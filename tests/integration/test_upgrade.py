"""Objects that earlier versions handled with a kopf daemon carry kopf's finalizer and
annotations: this version removes them when it first looks at them, so their deletion never
hangs, and adds none of its own. The operator runs as `bigmodel run` against the session
sandbox."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bigmodel.controller.legacy import FINALIZER
from kubesandbox.testing import RunningSandbox, wait_for
from support.chaos import SIMULATED
from support.harness import Cluster, Operator

pytestmark = pytest.mark.integration

DIFF_BASE = "bigmodel.dev/last-handled-configuration"
OLD_MARKS = {"finalizers": [FINALIZER], "annotations": {DIFF_BASE: "{}", "team": "ml"}}
"""What a job handled by an earlier version carries (and an annotation of the user's)."""


def marks(cluster: Cluster, name: str) -> tuple[list[str], dict[str, str]]:
    meta = cluster.job(name)["metadata"]
    return list(meta.get("finalizers") or ()), dict(meta.get("annotations") or {})


def gone(cluster: Cluster, name: str) -> bool:
    return not cluster.kubectl("get", "bmj", name, "--ignore-not-found", "-o", "name").strip()


def test_a_job_of_an_earlier_version_loses_its_finalizer_and_deletes_at_once(
    cluster: Cluster, operator: Operator
) -> None:
    cluster.apply_job("old", {**SIMULATED, "nodes": 1}, **OLD_MARKS)
    wait_for("the old finalizer removed", lambda: not marks(cluster, "old")[0])
    annotations = marks(cluster, "old")[1]
    assert DIFF_BASE not in annotations and annotations["team"] == "ml"  # the user's kept
    cluster.wait_phase("old", "Running", timeout=60)
    cluster.kubectl("delete", "bmj", "old", "--timeout=60s")
    assert gone(cluster, "old")


def test_a_new_job_gets_no_finalizer_and_no_kopf_annotation(
    cluster: Cluster, operator: Operator
) -> None:
    cluster.apply_job("new", {**SIMULATED, "nodes": 1})
    cluster.wait_phase("new", "Running", timeout=60)
    finalizers, annotations = marks(cluster, "new")
    assert finalizers == []
    assert not [key for key in annotations if key.startswith("bigmodel.dev/")], annotations


def test_a_job_left_deleting_by_an_earlier_version_is_released(
    sandbox: RunningSandbox, namespace: str, cluster: Cluster, tmp_path: Path
) -> None:
    cluster.apply_job("stuck", {**SIMULATED, "nodes": 1}, **OLD_MARKS)
    cluster.kubectl("delete", "bmj", "stuck", "--wait=false")  # held by the finalizer
    assert cluster.job("stuck")["metadata"].get("deletionTimestamp")
    with Operator(sandbox, namespace, tmp_path / "operator.log"):
        wait_for("the stuck job deleted", lambda: gone(cluster, "stuck"))


def test_a_service_of_an_earlier_version_loses_its_finalizer(
    cluster: Cluster, operator: Operator
) -> None:
    service = {
        "apiVersion": "bigmodel.dev/v1alpha1",
        "kind": "BigModelService",
        "metadata": {"name": "web", **OLD_MARKS},
        "spec": {
            **SIMULATED,
            "runtime": "custom",
            "replicas": 1,
            "tolerations": [{"key": "kubesandbox.dev/simulated", "operator": "Exists"}],
        },
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(service))

    def finalizers() -> list[str]:
        got = json.loads(cluster.kubectl("get", "bms", "web", "-o", "json"))
        return list(got["metadata"].get("finalizers") or ())

    wait_for("the old finalizer removed", lambda: not finalizers())
