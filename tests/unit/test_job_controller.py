"""The job controller's telemetry filter: which jobs get telemetry rounds."""

from __future__ import annotations

import pytest

from bigmodel.controller.job.controller import collecting


@pytest.mark.parametrize(
    ("phase", "metrics", "collected"),
    [
        ("Running", {}, True),
        ("Running", {"enabled": True, "port": 9400}, True),
        ("Running", {"enabled": False}, False),
        ("Pending", {}, False),
        ("Succeeded", {"enabled": True}, False),
    ],
)
def test_telemetry_runs_while_running_with_metrics_enabled(
    phase: str, metrics: dict[str, object], collected: bool
) -> None:
    spec = {"image": "x", "metrics": metrics} if metrics else {"image": "x"}
    assert collecting({"spec": spec}, phase) is collected
