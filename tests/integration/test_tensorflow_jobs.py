"""TensorFlow jobs with real `tensorflow-cpu` (`pip install -e '.[tensorflow]'`, or
`make test-frameworks`): the example trains 2 workers under MultiWorkerMirroredStrategy
through the operator in the sandbox, with T_i for each worker, and a failed worker restarts
the gang, which resumes from the chief's checkpoint. Slow (TensorFlow takes seconds to
import): marked `frameworks`, left out of `make test`, run by `make test-frameworks`."""

from __future__ import annotations

import importlib.util
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from kubesandbox.testing import wait_for
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
