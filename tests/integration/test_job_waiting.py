"""A job says why it waits: node pods the scheduler cannot place (PodsUnschedulable) or whose
containers the kubelet cannot start (PodsFailingToStart) are named in a condition and a
Warning event quoting the cluster's message, cleared once they schedule or start. The
operator runs as `bigmodel run` against the session sandbox."""

from __future__ import annotations

import json

import pytest

from kubesandbox.testing import wait_for
from support.harness import Cluster, Operator

pytestmark = pytest.mark.integration

GPUS = 8  # each simulated node of the session sandbox has 8
BLOCKER = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "blocker"},
    "spec": {
        "nodeSelector": {"type": "simulated"},
        "containers": [
            {
                "name": "main",
                "image": "sim",
                "command": ["sleep", "inf"],
                "resources": {"limits": {"nvidia.com/gpu": str(GPUS)}},
            }
        ],
    },
}


def status_of(cluster: Cluster, job: str, type_: str) -> str | None:
    """The status of a job's condition, None while it has none."""
    conditions = cluster.status(job).get("conditions") or ()
    return next((c["status"] for c in conditions if c["type"] == type_), None)


def test_unschedulable_node_pods_are_reported_until_they_schedule(
    operator: Operator, cluster: Cluster
) -> None:
    # One simulated node's GPUs are taken, so one of the two node pods fits nowhere.
    cluster.kubectl("apply", "-f", "-", input=json.dumps(BLOCKER))
    wait_for("the blocker running", lambda: cluster.pod_phases().get("blocker") == "Running")
    spec = {
        "image": "sim",
        "command": ["python", "-c", "pass"],
        "nodes": 2,
        "gpusPerNode": GPUS,
        "nodeSelector": {"type": "simulated"},
    }
    cluster.apply_job("wide", spec)
    wait_for("PodsUnschedulable", lambda: status_of(cluster, "wide", "PodsUnschedulable") == "True")
    condition = cluster.condition("wide", "PodsUnschedulable")
    [stuck] = [p for p in cluster.pods() if p["spec"].get("nodeName") is None]
    scheduled = next(c for c in stuck["status"]["conditions"] if c["type"] == "PodScheduled")
    assert condition["reason"] == "Unschedulable"
    assert f"{stuck['metadata']['name']}: {scheduled['message']}" in condition["message"]
    assert "Insufficient nvidia.com/gpu" in condition["message"]
    warning = next(e for e in cluster.event_list("wide") if e["reason"] == "Unschedulable")
    assert warning["type"] == "Warning" and warning["message"] == condition["message"]

    cluster.kubectl("delete", "pod", "blocker", "--wait=false")
    wait_for("cleared", lambda: status_of(cluster, "wide", "PodsUnschedulable") == "False")
    assert cluster.condition("wide", "PodsUnschedulable")["reason"] == "PodsScheduled"
    cluster.wait_phase("wide", "Running")
    assert "PodsScheduled" in cluster.events("wide")


def test_a_node_pod_that_cannot_start_is_reported_until_it_starts(
    operator: Operator, cluster: Cluster
) -> None:
    # A real process node: the kubelet waits with CreateContainerConfigError for the secret.
    token = {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "later", "key": "token"}}}
    spec = {"image": "trainer", "command": ["python", "-c", "pass"], "nodes": 1, "env": [token]}
    cluster.apply_job("needs", spec)
    wait_for(
        "PodsFailingToStart", lambda: status_of(cluster, "needs", "PodsFailingToStart") == "True"
    )
    condition = cluster.condition("needs", "PodsFailingToStart")
    assert condition["reason"] == "ContainersCannotStart"
    assert condition["message"] == (
        "1 of 1 node pods cannot start their containers: "
        'needs-node-0: CreateContainerConfigError: secret "later" not found'
    )
    assert "ContainersCannotStart" in cluster.events("needs")

    cluster.kubectl("create", "secret", "generic", "later", "--from-literal=token=abc")
    cluster.wait_phase("needs", "Succeeded")
    assert status_of(cluster, "needs", "PodsFailingToStart") == "False"
