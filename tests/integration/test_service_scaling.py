"""A BigModelService's autoscaling and telemetry end to end in the sandbox, with real server
processes: load scales it up within its windows and back to its minimum when the load stops;
status.telemetry's T and S are the operator's exported ones and Prometheus's of the same
round; a replica slowed on purpose is flagged as a straggler."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from bigmodel.api import ConditionType, Reason
from kubesandbox.testing import wait_for
from support.harness import Cluster, Operator, Prometheus, running_prometheus
from support.services import TESTS, Services, example_spec, steady_load
from support.serving import STRAGGLER_DIR

pytestmark = pytest.mark.integration


@pytest.fixture
def operator_env() -> dict[str, str]:
    """Telemetry (and autoscaling) rounds every second."""
    return {"BIGMODEL_TELEMETRY_INTERVAL": "1"}


def test_load_scales_the_service_up_and_back_to_its_minimum_when_it_stops(
    operator: Operator, services: Services, cluster: Cluster, checkpoints: Path
) -> None:
    autoscaling = {
        "minReplicas": 1,
        "maxReplicas": 2,
        "metric": "inFlight",
        "target": 2,
        "scaleDownStabilizationSeconds": 5,
    }
    services.apply("busy", example_spec(checkpoints, autoscaling=autoscaling))
    services.wait("busy", "Ready", ready=1)
    with steady_load(services.address("busy"), clients=8, tokens=24).running() as load:
        services.wait("busy", "Ready", ready=2, timeout=120)
        status = services.status("busy")
        assert status["desiredReplicas"] == 2
        assert status["autoscaling"]["metric"] == "inFlight"
        assert status["autoscaling"]["lastScaleTime"]
    assert load.errors == []
    services.wait("busy", "Ready", ready=1, timeout=120)
    events = [(e["reason"], e["message"]) for e in cluster.event_list("busy")]
    up = [m for r, m in events if r == Reason.SCALED_UP]
    down = [m for r, m in events if r == Reason.SCALED_DOWN]
    assert up and up[0].startswith("1 -> 2: in flight ")
    assert "per replica > target 2" in up[0]
    assert down and down[-1].startswith("2 -> 1: in flight 0 per replica < target 2")


def test_status_t_and_s_agree_with_the_operators_metrics_and_prometheus(
    operator: Operator, services: Services, cluster: Cluster, checkpoints: Path, tmp_path: Path
) -> None:
    services.apply("watched", example_spec(checkpoints))
    services.wait("watched", "Ready", ready=1)
    labels = {"namespace": cluster.ns, "kind": "BigModelService", "name": "watched"}
    config = {
        "global": {"scrape_interval": "500ms", "scrape_timeout": "500ms"},
        "scrape_configs": [
            {
                "job_name": "bigmodel-operator",
                "honor_labels": True,
                "static_configs": [{"targets": [f"127.0.0.1:{operator.metrics_port}"]}],
            }
        ],
    }
    with (
        steady_load(services.address("watched"), clients=2).running(),
        running_prometheus(tmp_path, config) as prometheus,
    ):

        def same_round() -> dict[str, Any] | None:
            telemetry = services.status("watched").get("telemetry") or {}
            if not telemetry.get("n"):
                return None
            want = {"T": telemetry["totalTaskSeconds"], "S": telemetry["serviceQuality"]}
            exported = {
                "T": operator.samples("bigmodel_task_seconds", **labels).get(()),
                "S": operator.samples("bigmodel_service_quality", **labels).get(()),
            }
            return telemetry if exported == want == queried(prometheus, labels) else None

        telemetry = wait_for("status, /metrics and Prometheus to agree", same_round, timeout=60)
    [replica] = telemetry["perNode"]
    assert telemetry["n"] == 1
    assert telemetry["totalTaskSeconds"] == replica["taskSeconds"] > 0
    assert telemetry["serviceQuality"] == pytest.approx(1 / replica["taskSeconds"], rel=1e-12)


def queried(prometheus: Prometheus, labels: dict[str, str]) -> dict[str, float]:
    """T and S of one service as Prometheus has them (NaN while absent)."""
    selector = ",".join(f'{k}="{v}"' for k, v in labels.items())

    def one(metric: str) -> float:
        values = list(prometheus.query(f"{metric}{{{selector}}}").values())
        return values[0] if len(values) == 1 else math.nan

    return {"T": one("bigmodel_task_seconds"), "S": one("bigmodel_service_quality")}


def test_a_replica_slowed_on_purpose_is_flagged_as_a_straggler(
    operator: Operator, services: Services, checkpoints: Path, tmp_path: Path
) -> None:
    marks = tmp_path / "slow"
    marks.mkdir()
    spec = example_spec(
        checkpoints,
        replicas=2,
        telemetry={"stragglerThreshold": 0.5, "windowSeconds": 5},
        args=["--model-factory", "support.serving:straggler_model", "--torch-threads", "1"],
        env=[
            {"name": STRAGGLER_DIR, "value": str(marks)},
            {"name": "PYTHONPATH", "value": str(TESTS)},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        ],
    )
    del spec["autoscaling"]
    services.apply("uneven", spec)
    services.wait("uneven", "Ready", ready=2)
    slow = sorted(p["metadata"]["name"] for p in services.replicas("uneven"))[0]
    (marks / slow).touch()
    with steady_load(services.address("uneven"), clients=4).running():

        def flagged() -> dict[str, Any] | None:
            found = services.condition("uneven", ConditionType.STRAGGLER_DETECTED)
            return found if found["status"] == "True" else None

        condition = wait_for("StragglerDetected=True", flagged, timeout=90)
    assert condition["reason"] == Reason.SLOW_NODES
    assert f"replica {slow}" in condition["message"]
    assert services.status("uneven")["telemetry"]["stragglers"] == [slow]
