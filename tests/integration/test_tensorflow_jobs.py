"""TensorFlow jobs with real `tensorflow-cpu` (`pip install -e '.[tensorflow]'`, or
`make test-frameworks`): the example trains 2 workers under MultiWorkerMirroredStrategy
through the operator in the sandbox, with T_i for each worker; a failed worker restarts
the gang, which resumes from the chief's checkpoint; and a job with a parameter server and
an evaluator, each pod reading TF_CONFIG with TensorFlow's own cluster resolver. Slow
(TensorFlow takes seconds to import): marked `frameworks`, left out of `make test`, run by
`make test-frameworks`."""

from __future__ import annotations

import importlib.util
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from kubesandbox.testing import free_port, wait_for
from support.examples import example as load_example
from support.harness import Cluster, Operator

pytestmark = [
    pytest.mark.integration,
    pytest.mark.frameworks,
    pytest.mark.timeout(900),
    pytest.mark.skipif(
        importlib.util.find_spec("tensorflow") is None,
        reason="needs tensorflow-cpu: pip install -e '.[tensorflow]' (or make test-frameworks)",
    ),
]

TRAINER = "python -m bigmodel.runtime.example_trainer_tf --steps-per-epoch 10 --threads 1"
TASK_INDEX = (
    'python -c \'import json, os; print(json.loads(os.environ["TF_CONFIG"])["task"]["index"])\''
)

# Every pod prints its task and cluster as TensorFlow's TFConfigClusterResolver reads them
# from TF_CONFIG. The parameter server then runs a tf.distribute.Server until it is stopped;
# the evaluator exits; each worker waits until the parameter server answers at the address
# its cluster spec gives, and until the test lets it go ($GO appears), then exits 0.
ROLES = textwrap.dedent(
    """
    import json, os, socket, sys, time
    import tensorflow as tf
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    cluster = resolver.cluster_spec().as_dict()
    view = {"type": resolver.task_type, "index": resolver.task_id, "cluster": cluster}
    print(json.dumps({"view": view}), flush=True)
    if resolver.task_type == "ps":
        server = tf.distribute.Server(
            resolver.cluster_spec(), job_name="ps", task_index=resolver.task_id, start=True
        )
        print(json.dumps({"serving": server.target}), flush=True)
        server.join()
    elif resolver.task_type == "worker":
        host, port = cluster["ps"][0].rsplit(":", 1)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            try:
                socket.create_connection((host, int(port)), timeout=5).close()
                break
            except OSError:
                time.sleep(0.5)
        else:
            sys.exit("the parameter server never answered at " + cluster["ps"][0])
        print(json.dumps({"reached": cluster["ps"][0]}), flush=True)
        while not os.path.exists(os.environ["GO"]) and time.monotonic() < deadline:
            time.sleep(0.2)
    """
)


@pytest.fixture
def operator_env() -> dict[str, str]:
    """The operator collects telemetry every second."""
    return {"BIGMODEL_TELEMETRY_INTERVAL": "1"}


def example_spec(tmp_path: Path, **changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = load_example("tf-job.yaml", "BigModelJob")["spec"]
    spec["args"] = [*spec["args"][:-2], "--checkpoint-dir", str(tmp_path / "checkpoints")]
    spec.pop("volumes")
    spec.pop("volumeMounts")
    return {**spec, **changes}


def chief_log(cluster: Cluster, job: str) -> list[dict[str, Any]]:
    lines = cluster.kubectl("logs", f"{job}-node-0").splitlines()
    return [json.loads(line) for line in lines if line.startswith('{"msg"')]


def test_the_example_trains_two_workers_to_success_with_t_i_for_each(
    operator: Operator, cluster: Cluster, tmp_path: Path
) -> None:
    cluster.apply_job("tf", example_spec(tmp_path))
    telemetry = wait_for(
        "T_i of both workers in status.telemetry",
        lambda: (t := cluster.status("tf").get("telemetry") or {}).get("n") == 2 and t,
        timeout=300,
        context=lambda: cluster.kubectl("get", "bmj,pods", "-o", "wide"),
    )
    per_node = {p["name"]: p["taskSeconds"] for p in telemetry["perNode"]}
    assert set(per_node) == {"tf-node-0", "tf-node-1"}
    assert all(seconds > 0 for seconds in per_node.values())
    shown = cluster.kubectl("get", "bmj", "tf")
    assert "T" in shown.splitlines()[0] and "S" in shown.splitlines()[0]
    status = cluster.wait_phase("tf", "Succeeded", timeout=600)
    assert status["restarts"] == 0
    losses = [line["loss"] for line in chief_log(cluster, "tf") if line["msg"] == "epoch"]
    assert len(losses) == 4 and losses[-1] < losses[0]


def test_a_failed_worker_restarts_the_gang_which_resumes_from_the_checkpoint(
    operator: Operator, cluster: Cluster, tmp_path: Path
) -> None:
    # The first run of each worker trains 2 epochs, then worker 1 exits 3; the rerun (after
    # the gang restart) must resume from epoch 2 and train to 4.
    checkpoints, marks = tmp_path / "checkpoints", tmp_path / "marks"
    marks.mkdir()
    script = textwrap.dedent(
        f"""
        index=$({TASK_INDEX})
        if [ ! -e {marks}/$index ]; then
          touch {marks}/$index
          {TRAINER} --epochs 2 --checkpoint-dir {checkpoints} || exit 1
          [ "$index" = 1 ] && exit 3
          exit 0
        fi
        exec {TRAINER} --epochs 4 --checkpoint-dir {checkpoints}
        """
    )
    spec = example_spec(tmp_path, command=["bash", "-c", script], args=[])
    spec["runPolicy"] = {"backoffLimit": 1}
    cluster.apply_job("tfresume", spec)
    status = cluster.wait_phase("tfresume", "Succeeded", timeout=600)
    assert status["restarts"] == 1
    log = chief_log(cluster, "tfresume")
    assert {"msg": "resumed", "epoch": 2, "checkpoint": str(checkpoints)} in log
    assert [line["epoch"] for line in log if line["msg"] == "epoch"] == [3, 4]


def printed(cluster: Cluster, pod: str, key: str) -> Any:
    """The value of the first JSON line `{key: ...}` that `pod` printed, once it has."""

    def find() -> Any:
        for line in cluster.kubectl("logs", pod).splitlines():
            if line.startswith(f'{{"{key}"'):
                return json.loads(line)[key]
        return None

    return wait_for(
        f"{pod} printed {key}", find, timeout=300, context=lambda: str(cluster.pod_phases())
    )


def test_ps_and_evaluator_tasks_resolve_tf_config_and_the_workers_decide_success(
    operator: Operator, cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    port = free_port()
    spec = {
        "framework": "tensorflow",
        "image": "python",
        "command": ["python", "-c", ROLES],
        "nodes": 2,
        "masterPort": port,
        "tensorflow": {"parameterServers": 1, "evaluators": 1},
        "env": [{"name": "GO", "value": str(go)}, {"name": "GRPC_DNS_RESOLVER", "value": "native"}],
        "runPolicy": {"cleanPodPolicy": "None"},
    }
    cluster.apply_job("tfps", spec)
    pods = {
        "tfps-node-0": ("worker", 0),
        "tfps-node-1": ("worker", 1),
        "tfps-ps-0": ("ps", 0),
        "tfps-evaluator": ("evaluator", 0),
    }
    views = {pod: printed(cluster, pod, "view") for pod in pods}
    assert {pod: (v["type"], v["index"]) for pod, v in views.items()} == pods
    tasks = {"worker": ["tfps-node-0", "tfps-node-1"], "ps": ["tfps-ps-0"]}
    tasks["evaluator"] = ["tfps-evaluator"]
    for view in views.values():  # every task sees every task, at its pod's name and port
        assert {role: len(addresses) for role, addresses in view["cluster"].items()} == {
            role: len(pods) for role, pods in tasks.items()
        }
        for role, addresses in view["cluster"].items():
            for pod, address in zip(tasks[role], addresses, strict=True):
                host, task_port = address.rsplit(":", 1)
                # The sandbox resolves the cluster names it already knows in the environment.
                assert host == f"{pod}.tfps.{namespace}.svc" or host.startswith("127.")
                assert task_port == str(port)
    assert printed(cluster, "tfps-ps-0", "serving").startswith("grpc://")
    for worker in ("tfps-node-0", "tfps-node-1"):
        assert printed(cluster, worker, "reached") == views[worker]["cluster"]["ps"][0]
    wait_for(  # the evaluator exited, and the job runs on
        "the evaluator exited 0",
        lambda: cluster.pod_phases()["tfps-evaluator"] == "Succeeded",
        timeout=120,
    )
    assert cluster.status("tfps")["phase"] == "Running"
    go.touch()
    status = cluster.wait_phase("tfps", "Succeeded", timeout=300)
    assert status["restarts"] == 0
    wait_for(  # cleanPodPolicy None: the pods that exited are kept, the running one stopped
        "the parameter server stopped",
        lambda: set(cluster.pod_phases()) == {"tfps-node-0", "tfps-node-1", "tfps-evaluator"},
        timeout=120,
        context=lambda: str(cluster.pod_phases()),
    )
