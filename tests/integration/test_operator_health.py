"""The operator's health under API faults: API errors never fail liveness (an outage would
otherwise restart every operator replica, and help nothing); readiness fails once the API
has not answered the operator for the grace, and recovers when it answers again; a watch
that stops delivering fails liveness, until it delivers again."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from kubesandbox.testing import RunningSandbox, probing, wait_for
from support.chaos import SIMULATED, JobsView
from support.harness import Operator

pytestmark = pytest.mark.integration

GRACE = 12.0
"""Longer than the period of the operator's API check while it succeeds (10 s)."""
OUTAGE = "error:code=503,user_agents=bigmodel-operator/"
STALL = 25


def probes_during(operator: Operator, seconds: float) -> list[tuple[int, int]]:
    """(liveness, readiness) codes, sampled twice a second for `seconds`."""
    codes, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        codes.append((operator.probe("/healthz")[0], operator.probe("/readyz")[0]))
        time.sleep(0.5)
    return codes


def test_api_errors_never_fail_liveness_and_an_outage_fails_readiness_only(
    sandbox: RunningSandbox, namespace: str, tmp_path: Path
) -> None:
    with Operator(
        sandbox, namespace, tmp_path / "operator.log", {"BIGMODEL_HEALTH_API_GRACE": str(GRACE)}
    ) as operator:
        # A blip shorter than the grace: at least one check fails, nothing else does.
        with sandbox.faults.injecting([OUTAGE]) as faults:
            codes = probes_during(operator, GRACE - 1.5)
            assert faults.injected(), "no API check in the blip"
        assert all(pair == (200, 200) for pair in codes), codes
        # An outage: every request of the operator fails. Readiness goes after the grace,
        # liveness stays; both are fine again once the API answers.
        with sandbox.faults.injecting([OUTAGE]):
            codes = probes_during(operator, GRACE + 5)
            status, body = operator.probe("/readyz")
        assert all(live == 200 for live, _ in codes), codes
        assert codes[-1][1] == 503 and status == 503, codes
        assert "apiServer" in body["failing"] and "503" in body["failing"]["apiServer"], body
        wait_for("readiness back", lambda: operator.probe("/readyz")[0] == 200, timeout=15)
        errors = operator.samples("bigmodel_api_errors_total", method="GET")
        assert errors.get(("503",), 0) > 0, errors


def test_a_watch_that_stops_delivering_fails_liveness_until_it_delivers_again(
    sandbox: RunningSandbox, namespace: str, tmp_path: Path
) -> None:
    # The job exists before the operator: kopf lists it, then its watch of BigModelJobs
    # hangs for STALL seconds (pods are watched as usual). The job's daemon writes its
    # status (pods created, Running); the watch does not bring those writes back.
    view = JobsView(sandbox, namespace)
    view.create("watched", {**SIMULATED, "nodes": 1})
    operator = Operator(
        sandbox, namespace, tmp_path / "operator.log", {"BIGMODEL_HEALTH_WATCH_STALL": "3"}
    )
    stall = f"stall:seconds={STALL},verbs=watch,resources=bigmodeljobs,user_agents=kopf/"
    with sandbox.faults.injecting([stall]), probing(operator.health_port, "/healthz") as codes:
        operator.start()
        try:
            wait_for("liveness to fail", lambda: codes[503], timeout=STALL)
            status, body = operator.probe("/healthz")
            assert status == 503 and "watches" in body["failing"], body
            wait_for("liveness back", lambda: operator.probe("/healthz")[0] == 200, STALL + 30)
            assert view.snapshot().jobs["watched"]["status"]["phase"] == "Running"
        finally:
            operator.stop()
