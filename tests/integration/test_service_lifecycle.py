"""BigModelService end to end in the sandbox: the operator (`bigmodel run`) and real server
processes (`python -m bigmodel.serving`) serving a checkpoint of the example trainer.

The example service becomes Ready and answers both protocols through its Service address;
`kubectl scale` adds replicas without restarting the others; a spec change rolls out with no
failed request under steady load; a model that cannot load fails with the server's reason
and recovers when the spec is fixed; a restarted operator changes nothing."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from bigmodel.api import ConditionType, Reason
from kubesandbox.testing import wait_for
from support.harness import Cluster, Operator
from support.services import MODEL, Services, call, completion, example_spec, steady_load

pytestmark = pytest.mark.integration

FIXED = {"autoscaling": None}


@pytest.fixture
def operator_env() -> dict[str, str]:
    """Telemetry (and autoscaling) rounds every second."""
    return {"BIGMODEL_TELEMETRY_INTERVAL": "1"}


def fixed(checkpoints: Path, replicas: int, **changes: object) -> dict[str, object]:
    """The example's spec with a fixed replica count instead of autoscaling."""
    spec = example_spec(checkpoints, replicas=replicas, **changes)
    del spec["autoscaling"]
    return spec


def test_the_example_service_is_ready_and_answers_both_protocols_through_its_service(
    operator: Operator, services: Services, cluster: Cluster, checkpoints: Path
) -> None:
    services.apply("chat", example_spec(checkpoints))
    status = services.wait("chat", "Ready", ready=1)
    assert status["url"] == f"http://chat.{cluster.ns}.svc:8000"
    assert (status["desiredReplicas"], status["updatedReplicas"]) == (1, 1)
    for type_ in (ConditionType.READY, ConditionType.AVAILABLE, ConditionType.MODEL_LOADED):
        assert services.condition("chat", type_)["status"] == "True", type_
    address = services.address("chat")

    assert call(f"{address}/v2/models/{MODEL}/ready")[0] == 200
    code, models = call(f"{address}/v1/models")
    assert (code, [m["id"] for m in models["data"]]) == (200, [MODEL])
    rows = {"name": "input_ids", "shape": [2, 3], "datatype": "INT64", "data": [1, 2, 3, 4, 5, 6]}
    code, inferred = call(f"{address}/v2/models/{MODEL}/infer", {"inputs": [rows]})
    assert code == 200
    [logits] = inferred["outputs"]
    assert (logits["datatype"], logits["shape"][0]) == ("FP32", 2)
    code, completed = completion(address, tokens=12)
    assert code == 200
    assert completed["usage"]["completion_tokens"] == 12
    assert completed["choices"][0]["finish_reason"] == "length"

    events = cluster.event_list("chat")
    assert Reason.ROLLOUT_COMPLETE in [e["reason"] for e in events]
    assert {e["source"]["component"] for e in events} == {"bigmodel-operator"}


def test_kubectl_scale_adds_replicas_without_restarting_the_others(
    operator: Operator, services: Services, cluster: Cluster, checkpoints: Path
) -> None:
    services.apply("grow", fixed(checkpoints, 1))
    services.wait("grow", "Ready", ready=1)
    [first] = services.replicas("grow")

    cluster.kubectl("scale", "bms", "grow", "--replicas=3")
    status = services.wait("grow", "Ready", ready=3)
    assert status["desiredReplicas"] == 3
    pods = {p["metadata"]["uid"]: p for p in services.replicas("grow")}
    assert first["metadata"]["uid"] in pods
    still = pods[first["metadata"]["uid"]]["status"]["containerStatuses"][0]
    assert still["restartCount"] == 0
    hashes = {p["metadata"]["annotations"]["bigmodel.dev/template-hash"] for p in pods.values()}
    assert len(hashes) == 1
    scaled = [e["message"] for e in cluster.event_list("grow") if e["reason"] == "ScaledUp"]
    assert scaled == ["1 -> 3: spec.replicas"]


def test_scaling_an_autoscaled_service_by_hand_is_refused_with_the_reason(
    operator: Operator, services: Services, cluster: Cluster, checkpoints: Path
) -> None:
    services.apply("auto", example_spec(checkpoints))
    refused = cluster.sandbox.kubectl(
        "-n", cluster.ns, "scale", "bms", "auto", "--replicas=3", check=False
    )
    assert refused.returncode != 0
    assert "spec.replicas cannot be set on an autoscaled service" in refused.stderr


def test_a_spec_change_rolls_out_with_no_failed_request_under_steady_load(
    operator: Operator, services: Services, checkpoints: Path
) -> None:
    services.apply("roll", fixed(checkpoints, 2))
    services.wait("roll", "Ready", ready=2)
    old = {p["metadata"]["uid"] for p in services.replicas("roll")}
    with steady_load(services.address("roll"), clients=3).running() as load:
        wait_for("requests answered", lambda: load.codes[200] >= 10)
        services.patch("roll", {"args": ["--max-batch-size", "8", "--torch-threads", "1"]})
        wait_for("the rollout to start", lambda: services.status("roll").get("phase") != "Ready")
        services.wait("roll", "Ready", ready=2, timeout=120)
        answered = load.codes[200]
        wait_for("requests to the new replicas", lambda: load.codes[200] >= answered + 10)
    new = {p["metadata"]["uid"] for p in services.replicas("roll")}
    assert not new & old
    assert load.errors == []
    assert load.codes[200] >= 20


def test_a_model_that_cannot_load_fails_with_the_servers_reason_and_recovers_when_fixed(
    operator: Operator, services: Services, cluster: Cluster, checkpoints: Path
) -> None:
    broken = fixed(checkpoints, 1, model={"name": MODEL, "uri": "/checkpoints/missing"})
    services.apply("bad", broken)
    status = services.wait("bad", "Failed")
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == Reason.MODEL_LOAD_FAILED
    assert "model load failed" in ready["message"]
    # The sandbox rewrote the mount path to its host directory in the server's arguments.
    assert "missing': no such file or directory" in ready["message"]
    assert services.condition("bad", ConditionType.STALLED)["status"] == "True"
    warnings = [e for e in cluster.event_list("bad") if e["type"] == "Warning"]
    assert Reason.MODEL_LOAD_FAILED in [e["reason"] for e in warnings]

    services.patch("bad", {"model": {"name": MODEL, "uri": "/checkpoints"}})
    services.wait("bad", "Ready", ready=1, timeout=120)
    assert services.condition("bad", ConditionType.MODEL_LOADED)["status"] == "True"
    assert (
        json.loads(cluster.kubectl("get", "bms", "bad", "-o", "json"))["status"]["phase"] == "Ready"
    )


def test_a_restarted_operator_changes_nothing_of_a_ready_service(
    operator: Operator, services: Services, cluster: Cluster, checkpoints: Path
) -> None:
    services.apply("calm", fixed(checkpoints, 2))
    before = services.wait("calm", "Ready", ready=2)
    pods = {p["metadata"]["uid"] for p in services.replicas("calm")}
    deployment = json.loads(cluster.kubectl("get", "deployment", "calm", "-o", "json"))
    events = len(cluster.event_list("calm"))

    operator.stop(signal.SIGKILL)
    operator.start()
    stamp = before["telemetry"].get("updatedAt")
    wait_for(
        "a telemetry round of the new operator",
        lambda: (services.status("calm").get("telemetry") or {}).get("updatedAt") != stamp,
    )
    after = json.loads(cluster.kubectl("get", "deployment", "calm", "-o", "json"))
    assert after["metadata"]["generation"] == deployment["metadata"]["generation"]
    assert {p["metadata"]["uid"] for p in services.replicas("calm")} == pods
    assert services.status("calm")["phase"] == "Ready"
    assert len(cluster.event_list("calm")) == events
