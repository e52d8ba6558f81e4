"""`stragglerPolicy: Replace` for a BigModelService in the sandbox: the torch server of the
example checkpoint, every forward slowed on one MACHINE; under steady load the operator
deletes the replica there, the rolled-out template prefers the other machine, S after is
recorded and no replica straggles any more. (S itself need not rise here: the sandbox's
machines share this host's CPUs, so the fast replica was faster while the slow one idled.)"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kubesandbox.testing import wait_for
from support.harness import Operator
from support.services import TESTS, Services, example_spec, steady_load
from support.serving import STRAGGLER_DIR

# minutes each under real torchrun: `make test-scenarios` runs them, apart from `make test`
pytestmark = [pytest.mark.integration, pytest.mark.scenarios]


@pytest.fixture
def operator_env() -> dict[str, str]:
    """A telemetry round every second."""
    return {"BIGMODEL_TELEMETRY_INTERVAL": "1"}


def test_replace_moves_a_slow_replica_off_its_machine_and_s_rises(
    operator: Operator,
    services: Services,
    checkpoints: Path,
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    marks = tmp_path / "slow"
    marks.mkdir()
    spec = example_spec(
        checkpoints,
        replicas=2,
        telemetry={
            "stragglerThreshold": 0.5,
            "windowSeconds": 5,
            "stragglerPolicy": {"action": "Replace", "after": 1, "maxReplacements": 1},
        },
        args=["--model-factory", "support.serving:straggler_model", "--torch-threads", "1"],
        env=[
            {"name": STRAGGLER_DIR, "value": str(marks)},
            {"name": "PYTHONPATH", "value": str(TESTS)},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "BIGMODEL_NODE_NAME",
             "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        ],
    )  # fmt: skip
    del spec["autoscaling"]
    services.apply("moving", spec)
    services.wait("moving", "Ready", ready=2)
    machines = {p["spec"]["nodeName"] for p in services.replicas("moving")}
    assert len(machines) == 2, f"the sandbox placed both replicas on {machines}"
    slow = sorted(machines)[1]
    (marks / slow).touch()  # every forward on that machine is slower from now on

    def measured() -> dict[str, Any] | None:
        done = services.status("moving").get("stragglerReplacements") or []
        return done[0] if done and "serviceQualityAfter" in done[0] else None

    def context() -> str:
        return services.cluster.kubectl("get", "bms,deploy,pods", "-o", "wide")

    with steady_load(services.address("moving"), clients=4).running():
        replacement = wait_for("S measured after the replacement", measured, 180, context)
        record_property("replacement", replacement)  # S before and after, in the JUnit XML

        def cleared() -> bool:
            return not services.status("moving")["telemetry"].get("stragglers")

        wait_for("no straggler left", cleared, 60, context)
    assert replacement["machine"] == slow and replacement["serviceQualityAfter"] > 0
    replicas = services.replicas("moving")
    assert len(replicas) == 2 and all(p["spec"]["nodeName"] != slow for p in replicas)
    events = {e["reason"]: e["message"] for e in services.cluster.event_list("moving")}
    assert f"off machine {slow}" in events["StragglerReplaced"]
    assert "S after moving" in events["ReplacementMeasured"]
