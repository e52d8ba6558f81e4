"""Jobs whose pods have several roles, end to end (`bigmodel run` against the sandbox), with
plain processes standing in for TensorFlow's tasks: TF_CONFIG as each pod sees it, success
decided by the workers, parameter servers and the evaluator stopped then, a worker's failure.
The same with real TensorFlow: test_tensorflow_jobs.py."""

from __future__ import annotations

import json
import textwrap
from typing import Any

import pytest

from kubesandbox.testing import wait_for
from support.harness import Cluster, Operator

pytestmark = pytest.mark.integration

# Workers print the TF_CONFIG they see and exit (worker 1 with $WORKER_1_EXIT); the other
# tasks wait as parameter servers do, until they are stopped.
TASK = textwrap.dedent(
    """
    import json, os, sys, time
    config = json.loads(os.environ["TF_CONFIG"])
    print(json.dumps(config), flush=True)
    task = config["task"]
    if task["type"] != "worker":
        time.sleep(600)
    sys.exit(int(os.environ.get("WORKER_1_EXIT", "0")) if task["index"] == 1 else 0)
    """
)


def roles_spec(**extra: Any) -> dict[str, Any]:
    return {
        "framework": "tensorflow",
        "image": "python",
        "command": ["python", "-c", TASK],
        "nodes": 2,
        "masterPort": 2222,
        "tensorflow": {"parameterServers": 1, "evaluators": 1},
        **extra,
    }


def seen_config(cluster: Cluster, pod: str) -> dict[str, Any]:
    """The TF_CONFIG `pod` printed (its first log line)."""
    line = wait_for(f"{pod} printed its TF_CONFIG", lambda: cluster.kubectl("logs", pod).strip())
    config: dict[str, Any] = json.loads(str(line).splitlines()[0])
    return config


def test_every_pod_sees_tfjobs_tf_config_and_the_workers_decide_success(
    operator: Operator, cluster: Cluster, namespace: str
) -> None:
    cluster.apply_job("tfroles", roles_spec(runPolicy={"cleanPodPolicy": "None"}))
    status = cluster.wait_phase("tfroles", "Succeeded", timeout=120)
    assert status["restarts"] == 0
    # cleanPodPolicy None keeps the workers; the parameter server and evaluator are stopped
    wait_for(
        "the parameter server and the evaluator stopped",
        lambda: set(cluster.pod_phases()) == {"tfroles-node-0", "tfroles-node-1"},
        timeout=60,
    )
    config = seen_config(cluster, "tfroles-node-1")
    assert config["task"] == {"type": "worker", "index": 1}
    assert config["environment"] == "cloud"
    assert {role: len(addresses) for role, addresses in config["cluster"].items()} == {
        "worker": 2,
        "ps": 1,
        "evaluator": 1,
    }
    # The sandbox resolves cluster names it already knows in the environment it passes on.
    host, port = config["cluster"]["worker"][1].rsplit(":", 1)
    assert port == "2222"
    assert host == f"tfroles-node-1.tfroles.{namespace}.svc" or host.startswith("127."), host


def test_a_worker_that_fails_fails_the_job_under_restart_policy_never(
    operator: Operator, cluster: Cluster
) -> None:
    spec = roles_spec(
        env=[{"name": "WORKER_1_EXIT", "value": "1"}],
        runPolicy={"restartPolicy": "Never"},
        tensorflow={"parameterServers": 1},
    )
    cluster.apply_job("tffail", spec)
    cluster.wait_phase("tffail", "Failed", timeout=120)
    failed = cluster.condition("tffail", "Failed")
    assert (failed["reason"], "tffail-node-1 exited with code 1" in failed["message"]) == (
        "PodFailed",
        True,
    )
    wait_for("the parameter server stopped", lambda: "tffail-ps-0" not in cluster.pod_phases())
