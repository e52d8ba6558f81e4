"""The BigModelJob controller end to end: `bigmodel run` (the image's entry point) against
the sandbox. Lifecycle tests run their pods on the sandbox's simulated nodes (pods finish on
the `kubesandbox.dev/exit-code` annotation, no process); training tests run real
torchrun processes on its process node."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from kubesandbox.testing import wait_for
from support.examples import example as load_example
from support.harness import (
    EXIT_CODE,
    Cluster,
    Operator,
)
from support.trainer_scripts import gang_restart_script

pytestmark = pytest.mark.integration

SIMULATED = {
    "image": "sim",
    "command": ["python", "-c", "pass"],
    "nodes": 2,
    "nodeSelector": {"type": "simulated"},
}


# -- lifecycle on simulated nodes -------------------------------------------------------------


def test_a_failed_node_restarts_the_gang_once_then_backoff_limit_fails_it(
    operator: Operator, cluster: Cluster
) -> None:
    cluster.apply_job("gang", {**SIMULATED, "runPolicy": {"backoffLimit": 1}})
    first = cluster.wait_running_pods(2)
    cluster.exit("gang-node-1", 1)
    cluster.wait_phase("gang", "Running")
    # restarts is 1 from the moment the restart is decided (phase Restarting) until the new
    # gang runs: wait for the phase after it, not for the count alone
    wait_for(
        "one restart, then the new gang",
        lambda: (s := cluster.status("gang"))["restarts"] == 1 and s["phase"] == "Running",
    )
    second = cluster.wait_running_pods(2)
    assert set(second) == set(first) == {"gang-node-0", "gang-node-1"}
    cluster.exit("gang-node-0", 137)
    assert cluster.wait_phase("gang", "Failed")["restarts"] == 1
    assert cluster.condition("gang", "Failed")["reason"] == "BackoffLimitExceeded"
    assert {"GangRestart", "GangRecreated", "BackoffLimitExceeded"} <= set(cluster.events("gang"))


def test_exit_code_policy_fails_at_once_on_a_permanent_exit_code(
    operator: Operator, cluster: Cluster
) -> None:
    cluster.apply_job("codes", {**SIMULATED, "runPolicy": {"restartPolicy": "ExitCode"}})
    cluster.wait_running_pods(2)
    cluster.exit("codes-node-0", 2)
    assert cluster.wait_phase("codes", "Failed")["restarts"] == 0
    failed = cluster.condition("codes", "Failed")
    assert failed["reason"] == "NonRetryableExitCode"
    assert "codes-node-0 exited with code 2" in failed["message"]


def test_a_deleted_node_pod_is_recreated(operator: Operator, cluster: Cluster) -> None:
    cluster.apply_job("deleted", SIMULATED)
    cluster.wait_running_pods(2)
    cluster.wait_phase("deleted", "Running")
    before = cluster.uids()
    cluster.kubectl("delete", "pod", "deleted-node-1", "--wait=false")
    wait_for("new pods", lambda: set(cluster.uids().values()).isdisjoint(before.values()))
    cluster.wait_running_pods(2)
    assert cluster.status("deleted")["restarts"] == 1


def test_suspend_deletes_the_pods_and_resume_recreates_them(
    operator: Operator, cluster: Cluster
) -> None:
    cluster.apply_job("pause", SIMULATED)
    cluster.wait_running_pods(2)
    cluster.patch_spec("pause", {"runPolicy": {"suspend": True}})
    cluster.wait_phase("pause", "Suspended")
    wait_for("no pods", lambda: not cluster.pods())
    cluster.patch_spec("pause", {"runPolicy": {"suspend": False}})
    cluster.wait_running_pods(2)
    cluster.wait_phase("pause", "Running")
    assert {"Suspended", "Resumed"} <= set(cluster.events("pause"))


def test_the_active_deadline_fails_the_job_and_stops_its_pods(
    operator: Operator, cluster: Cluster
) -> None:
    cluster.apply_job("late", {**SIMULATED, "runPolicy": {"activeDeadlineSeconds": 2}})
    cluster.wait_phase("late", "Failed")
    assert cluster.condition("late", "Failed")["reason"] == "DeadlineExceeded"
    wait_for("no pods", lambda: not cluster.pods())


def test_a_finished_job_is_deleted_after_its_ttl(operator: Operator, cluster: Cluster) -> None:
    cluster.apply_job("brief", {**SIMULATED, "runPolicy": {"ttlSecondsAfterFinished": 1}})
    cluster.wait_running_pods(2)
    cluster.kubectl("annotate", "pods", "--all", f"{EXIT_CODE}=0")
    wait_for("the job to be deleted", lambda: "brief" not in cluster.kubectl("get", "bmj"))
    wait_for("its pods to be deleted", lambda: not cluster.pods())


@pytest.mark.parametrize(("policy", "left"), [("All", 0), ("None", 2)])
def test_clean_pod_policy(operator: Operator, cluster: Cluster, policy: str, left: int) -> None:
    cluster.apply_job("clean", {**SIMULATED, "runPolicy": {"cleanPodPolicy": policy}})
    cluster.wait_running_pods(2)
    cluster.kubectl("annotate", "pods", "--all", f"{EXIT_CODE}=0")
    cluster.wait_phase("clean", "Succeeded")
    wait_for(f"{left} pods left", lambda: len(cluster.pod_phases()) == left)
    time.sleep(1)
    assert len(cluster.pod_phases()) == left


def test_elastic_replaces_a_failed_node_in_place(operator: Operator, cluster: Cluster) -> None:
    spec = {**SIMULATED, "nodes": 3, "elastic": {"minNodes": 2, "maxNodes": 3}}
    cluster.apply_job("elastic", spec)
    before = cluster.wait_running_pods(3)
    cluster.wait_phase("elastic", "Running")
    uids = cluster.uids()
    cluster.exit("elastic-node-2", 1)
    old = uids["elastic-node-2"]
    wait_for("node 2 replaced", lambda: cluster.uids().get("elastic-node-2", old) != old)
    cluster.wait_running_pods(3)
    after = cluster.uids()
    assert set(after) == set(before)
    assert after["elastic-node-0"] == uids["elastic-node-0"]  # the others kept running
    status = cluster.status("elastic")
    assert (status["phase"], status["restarts"]) == ("Running", 1)
    assert "NodeReplaced" in cluster.events("elastic")


def test_an_invalid_spec_fails_with_a_reason_naming_the_field(
    operator: Operator, cluster: Cluster
) -> None:
    spec = {**SIMULATED, "env": [{"name": "BIGMODEL_METRICS_PORT", "value": "1"}]}
    cluster.apply_job("bad", spec)
    cluster.wait_phase("bad", "Failed")
    failed = cluster.condition("bad", "Failed")
    assert failed["reason"] == "Invalid"
    assert "spec.env[0].name" in failed["message"]
    assert cluster.pods() == []
    assert "Invalid" in cluster.events("bad")


def test_killing_the_operator_during_creation_leaves_one_pod_per_node(
    sandbox: Any, namespace: str, cluster: Cluster, tmp_path: Path
) -> None:
    first = Operator(sandbox, namespace, tmp_path / "operator.log")
    first.start()
    cluster.apply_job("crash", {**SIMULATED, "nodes": 12})
    wait_for("a first pod", cluster.pods, timeout=30)
    first.stop(signal.SIGKILL)
    created = cluster.uids()
    second = Operator(sandbox, namespace, tmp_path / "operator.log")
    second.start()
    try:
        pods = cluster.wait_running_pods(12)
        assert sorted(pods) == sorted(f"crash-node-{i}" for i in range(12))
        uids = cluster.uids()
        assert all(uids[name] == uid for name, uid in created.items())  # none recreated
        assert cluster.wait_phase("crash", "Running")["restarts"] == 0
    finally:
        second.stop()


def test_ten_jobs_at_once_all_succeed(operator: Operator, cluster: Cluster) -> None:
    names = [f"many-{i}" for i in range(10)]
    for name in names:
        cluster.apply_job(name, SIMULATED)
    cluster.wait_running_pods(20)
    cluster.kubectl("annotate", "pods", "--all", f"{EXIT_CODE}=0")
    for name in names:
        assert cluster.wait_phase(name, "Succeeded")["restarts"] == 0


def test_kubectl_shows_phase_nodes_restarts_age_and_events(
    operator: Operator, cluster: Cluster
) -> None:
    cluster.apply_job("shown", SIMULATED)
    cluster.wait_phase("shown", "Running")
    table = cluster.kubectl("get", "bmj", "shown").splitlines()
    assert table[0].split()[:4] == ["NAME", "PHASE", "NODES", "RESTARTS"]
    assert table[0].split()[-1] == "AGE"
    assert table[1].split()[:4] == ["shown", "Running", "2", "0"]
    described = cluster.kubectl("describe", "bmj", "shown")
    assert "PodsCreated" in described
    assert "NodesRunning" in described


# -- real torchrun processes ------------------------------------------------------------------


def _trainer_spec(args: list[str]) -> dict[str, Any]:
    example = load_example("cpu-job.yaml", "BigModelJob")
    return {**example["spec"], "args": args}


def _losses(cluster: Cluster, pod: str) -> list[float]:
    lines = cluster.kubectl("logs", pod).splitlines()
    records = [json.loads(line) for line in lines if line.startswith('{"msg"')]
    return [r["loss"] for r in records if r["msg"] == "step"]


# Over half a minute of a real 2 x 2 torchrun, so `make test-scenarios` runs it: `make test`
# trains the same example to Succeeded under the operator that the chart installs
# (test_chart_install.py), and sees the loss fall under 2 x 2 torchrun (test_trainer_torchrun.py).
@pytest.mark.scenarios
def test_the_cpu_example_trains_across_two_nodes_to_success(
    operator: Operator, cluster: Cluster
) -> None:
    example = load_example("cpu-job.yaml", "BigModelJob")
    cluster.apply_job(example["metadata"]["name"], example["spec"])
    status = cluster.wait_phase("cpu-demo", "Succeeded", timeout=240)
    assert status["restarts"] == 0
    losses = _losses(cluster, "cpu-demo-node-0")
    assert len(losses) >= 2
    assert losses[-1] < losses[0]


def test_a_node_that_exits_non_zero_restarts_the_gang_from_the_checkpoint(
    operator: Operator, cluster: Cluster, tmp_path: Path
) -> None:
    # First run: 10 steps, then node 1's process exits 3; the rerun trains on to 20. One
    # process per node: a gang restart is about nodes (test_trainer_torchrun.py runs 2 x 2).
    # Node 0's torchrun waits in its exit barrier and handles SIGTERM only when that wait
    # returns: its deletion ends in SIGKILL after the grace, 5 s here rather than 30.
    script = gang_restart_script(tmp_path)
    spec = {**_trainer_spec([]), "command": ["bash", "-c", script], "procsPerNode": 1}
    spec["podTemplate"] = {"spec": {"terminationGracePeriodSeconds": 5}}
    spec["runPolicy"] = {"backoffLimit": 1}
    cluster.apply_job("resume", spec)
    status = cluster.wait_phase("resume", "Succeeded", timeout=240)
    assert status["restarts"] == 1
    log = cluster.kubectl("logs", "resume-node-0")
    assert "resumed from step 10" in log
