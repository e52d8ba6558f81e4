"""Telemetry of a BigModelJob end to end: `bigmodel run` against the sandbox, real torchrun
pods of the example trainer serving their step times, the operator collecting them every
second into the job's status, its own /metrics, a real Prometheus, and the
StragglerDetected condition and events."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from kubesandbox.testing import wait_for
from support.examples import example as load_example
from support.harness import (
    Cluster,
    Operator,
    Prometheus,
    running_prometheus,
)

pytestmark = pytest.mark.integration

INTERVAL = 1.0
"""Seconds between two telemetry rounds (BIGMODEL_TELEMETRY_INTERVAL)."""


@pytest.fixture
def operator_env() -> dict[str, str]:
    """The operator collects telemetry every INTERVAL seconds."""
    return {"BIGMODEL_TELEMETRY_INTERVAL": str(INTERVAL)}


REL = 1e-9
JOB_METRICS = ("bigmodel_task_seconds", "bigmodel_service_quality", "bigmodel_nodes")


def trainer_spec(steps: int, checkpoints: Path | None = None, **env: str) -> dict[str, Any]:
    """The CPU example (2 nodes x 2 processes) training `steps` steps, with `env` added."""
    example = load_example("cpu-job.yaml", "BigModelJob")
    spec: dict[str, Any] = example["spec"]
    spec["args"] = ["--steps", str(steps), "--batch-size", "4", "--log-every", "10"]
    if checkpoints is not None:
        spec["args"] += ["--checkpoint-dir", str(checkpoints), "--checkpoint-every", "0"]
    spec["env"] = [{"name": k, "value": v} for k, v in env.items()]
    return spec


def telemetry_of(cluster: Cluster, job: str, n: int = 2) -> dict[str, Any]:
    """status.telemetry once `n` nodes report a T_i."""
    return dict(
        wait_for(
            f"status.telemetry of {job} with n={n}",
            lambda: (t := cluster.status(job).get("telemetry") or {}).get("n") == n and t,
            timeout=60,
            context=lambda: cluster.kubectl("get", "bmj,pods", "-o", "wide"),
        )
    )


def assert_consistent(telemetry: dict[str, Any], job: str) -> None:
    """T = sum T_i and S = mean 1/T_i over the listed nodes, one per node pod."""
    per_node = {p["name"]: p["taskSeconds"] for p in telemetry["perNode"]}
    assert set(per_node) == {f"{job}-node-0", f"{job}-node-1"}
    assert all(t > 0 for t in per_node.values())
    assert telemetry["totalTaskSeconds"] == pytest.approx(math.fsum(per_node.values()), rel=REL)
    quality = math.fsum(1 / t for t in per_node.values()) / len(per_node)
    assert telemetry["serviceQuality"] == pytest.approx(quality, rel=REL)
    assert telemetry["slowestNode"] == max(per_node, key=lambda name: per_node[name])


def test_a_running_job_reports_t_and_s_in_status_and_metrics_until_it_finishes(
    operator: Operator, cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    # Every step sleeps 0.25 s on both nodes: about 10 s of training, T_i ~ 0.25 s. (With a
    # checkpoint, a gang restart after the last step, if torchrun's exit races, ends at once.)
    spec = trainer_spec(40, tmp_path / "checkpoints", BIGMODEL_SLOWDOWN_SECONDS="0.25")
    cluster.apply_job("steady", spec)
    telemetry = telemetry_of(cluster, "steady")
    assert_consistent(telemetry, "steady")
    assert all(t >= 0.25 for t in (p["taskSeconds"] for p in telemetry["perNode"]))

    job = {"namespace": namespace, "kind": "BigModelJob", "name": "steady"}

    def exported_round() -> dict[str, Any] | None:
        """The status of the round the operator's /metrics shows (rounds change every
        second: retry until a status read and a scrape see the same one)."""
        status = cluster.status("steady")["telemetry"]
        nodes = operator.samples("bigmodel_node_task_seconds", **job)
        total = operator.samples("bigmodel_task_seconds", **job).get(())
        quality = operator.samples("bigmodel_service_quality", **job).get(())
        per_node = {p["name"]: p["taskSeconds"] for p in status["perNode"]}
        same = (
            total == status["totalTaskSeconds"]
            and quality == status["serviceQuality"]
            and {f"steady-node-{node}": t for (node,), t in nodes.items()} == per_node
        )
        return status if same else None

    wait_for("/metrics to show the status's round", exported_round, timeout=20)
    assert operator.samples("bigmodel_nodes", **job) == {(): 2.0}
    assert operator.samples("bigmodel_stragglers", **job) == {(): 0.0}
    assert operator.samples("bigmodel_jobs", namespace=namespace, phase="Running") == {(): 1.0}
    assert operator.samples("bigmodel_reconciles_total", kind="BigModelJob")[()] > 0
    assert operator.samples("bigmodel_telemetry_scrapes_total", kind="BigModelJob")[()] >= 2

    cluster.wait_phase("steady", "Succeeded", timeout=60)
    for name in (*JOB_METRICS, "bigmodel_node_task_seconds", "bigmodel_node_relative_speed"):
        wait_for(f"{name} of the finished job to go", lambda n=name: not operator.samples(n, **job))
    assert operator.samples("bigmodel_jobs", namespace=namespace, phase="Succeeded") == {(): 1.0}
    assert cluster.condition("steady", "StragglerDetected")["status"] == "False"
    assert cluster.condition("steady", "Succeeded")["status"] == "True"  # both managers' kept
    # The finished job keeps its last measurement and the whole run's figures.
    kept = cluster.status("steady")["telemetry"]
    assert kept["n"] == 2 and kept["totalTaskSeconds"] >= 0.5, kept
    assert_consistent(kept, "steady")
    run = kept["run"]
    assert run["rounds"] >= 2 and run["meanTotalTaskSeconds"] >= 0.5, run
    assert 0 < run["meanServiceQuality"] <= 4.0, run  # T_i >= 0.25 s: S at most 4/s
    [row] = cluster.kubectl("get", "bmj", "steady", "--no-headers").splitlines()
    t, s_ = row.split()[4:6]  # NAME PHASE NODES RESTARTS T S AGE
    assert (t, s_) == (kept["readable"]["total"], kept["readable"]["quality"]), row
    assert t.endswith(("ms", "s")) and s_.endswith("/s") and len(t) <= 7, row


def test_prometheus_scraping_the_operator_sees_the_status_t_and_s(
    operator: Operator, cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    config = {
        "global": {"scrape_interval": "500ms", "scrape_timeout": "500ms"},
        "scrape_configs": [
            {
                "job_name": "bigmodel-operator",
                "honor_labels": True,  # keep the job's `namespace`, as the chart's monitor does
                "static_configs": [{"targets": [f"127.0.0.1:{operator.metrics_port}"]}],
            }
        ],
    }
    # Runs until the test ends; every step sleeps 0.2 s on both nodes.
    cluster.apply_job("watched", trainer_spec(100_000, BIGMODEL_SLOWDOWN_SECONDS="0.2"))
    with running_prometheus(tmp_path, config) as prometheus:
        telemetry_of(cluster, "watched")

        def same_round() -> dict[str, Any] | None:
            """The status, once Prometheus's latest scrape holds the same round (one per
            second; values of two rounds never agree to the last bit)."""
            status = cluster.status("watched")["telemetry"]
            got = queried(prometheus, namespace, "watched")
            per_node = {p["name"]: p["taskSeconds"] for p in status["perNode"]}
            want = {
                "T": status["totalTaskSeconds"],
                "S": status["serviceQuality"],
                "n": status["n"],
                "T_0": per_node.get("watched-node-0"),
                "T_1": per_node.get("watched-node-1"),
            }
            return status if got == want else None

        status = wait_for("Prometheus to agree with the status", same_round, timeout=30)
    assert_consistent(status, "watched")


def queried(prometheus: Prometheus, namespace: str, job: str) -> dict[str, float]:
    """T, S, n and T_i of one job as Prometheus has them (NaN while absent)."""

    def one(metric: str, **node: str) -> float:
        labels = {"namespace": namespace, "kind": "BigModelJob", "name": job, **node}
        selector = ",".join(f'{k}="{v}"' for k, v in labels.items())
        values = list(prometheus.query(f"{metric}{{{selector}}}").values())
        return values[0] if len(values) == 1 else math.nan

    return {
        "T": one("bigmodel_task_seconds"),
        "S": one("bigmodel_service_quality"),
        "n": one("bigmodel_nodes"),
        "T_0": one("bigmodel_node_task_seconds", node="0"),
        "T_1": one("bigmodel_node_task_seconds", node="1"),
    }


def test_a_slowed_node_is_flagged_as_straggler_then_cleared_when_it_speeds_up(
    operator: Operator, cluster: Cluster
) -> None:
    # Node 1 sleeps 0.5 s in each of its first 25 steps, then runs as fast as node 0.
    # Rounds every second, window 5 s: flagged after 5 slow rounds, cleared after 5 good.
    spec = trainer_spec(
        100_000,
        BIGMODEL_SLOWDOWN_SECONDS="0.5",
        BIGMODEL_SLOWDOWN_NODE_RANK="1",
        BIGMODEL_SLOWDOWN_UNTIL_STEP="25",
    )
    # Fast CPU steps are noisy on a busy machine: a 2x margin keeps "recovered" stable.
    spec["telemetry"] = {"stragglerThreshold": 0.5, "windowSeconds": 5}
    cluster.apply_job("slow", spec)

    def straggler(status: str) -> dict[str, Any] | None:
        conditions = cluster.status("slow").get("conditions") or ()
        found = next((c for c in conditions if c["type"] == "StragglerDetected"), None)
        return found if found and found["status"] == status else None

    context = lambda: cluster.kubectl("get", "bmj", "slow", "-o", "yaml")  # noqa: E731
    flagged = wait_for("StragglerDetected=True", lambda: straggler("True"), 60, context)
    assert flagged["reason"] == "SlowNodes"
    assert "node 1 (pod slow-node-1)" in flagged["message"]
    assert cluster.status("slow")["telemetry"]["stragglers"] == ["slow-node-1"]
    assert cluster.condition("slow", "Running")["status"] == "True"  # the controller's stays

    cleared = wait_for("StragglerDetected=False", lambda: straggler("False"), 60, context)
    assert cleared["reason"] == "NoStragglers"
    assert cluster.status("slow")["telemetry"].get("stragglers", []) == []
    events = [(e["type"], e["reason"], e["message"]) for e in cluster.event_list("slow")]
    detected = [e for e in events if e[1] == "StragglerDetected"]
    recovered = [e for e in events if e[1] == "StragglersCleared"]
    assert len(detected) == 1 and detected[0][0] == "Warning"
    assert "node 1 (pod slow-node-1)" in detected[0][2]
    assert recovered == [
        ("Normal", "StragglersCleared", "No longer straggling: node 1 (pod slow-node-1)")
    ]
