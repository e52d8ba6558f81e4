"""Two operator replicas, one leader: the standby keeps its caches warm and writes nothing;
when the leader is SIGKILLed while jobs churn, the standby takes the lease over and the jobs
lose nothing: one pod per node rank, each restart counted once, no event doubled (the chaos
suite's invariants). The long version is `benchmarks/chaos.py failover`."""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

import pytest

from kubesandbox.testing import RunningSandbox, wait_for
from support.chaos import CHAOS_TIMERS, ChurnWorkload, JobsView, wait_converged
from support.harness import Operator

pytestmark = pytest.mark.integration

ELECTED = {**CHAOS_TIMERS, "BIGMODEL_LEADER_ELECTION": "true"}
"""controller-runtime's lease timers (15/10/2 s), as the chart runs them."""
TAKEOVER = 120.0
"""Generous: the lease duration (15 s) and a retry period on a loaded machine."""


def job_reconciles(operator: Operator) -> float:
    return operator.samples("bigmodel_reconciles_total", kind="BigModelJob").get((), 0.0)


def churn(workload: ChurnWorkload, rng: random.Random, steps: int) -> None:
    for _ in range(steps):
        workload.step()
        time.sleep(rng.uniform(0.2, 0.8))


def test_the_standby_takes_over_a_killed_leader_and_the_jobs_lose_nothing(
    sandbox: RunningSandbox, namespace: str, tmp_path: Path
) -> None:
    rng = random.Random(23)
    view = JobsView(sandbox, namespace)
    first = Operator(sandbox, namespace, tmp_path / "first.log", ELECTED)
    second = Operator(sandbox, namespace, tmp_path / "second.log", ELECTED)
    try:
        first.start()
        wait_for("the first replica to lead", first.leads, timeout=TAKEOVER)
        second.start()  # ready: its caches are synced, warm
        workload = ChurnWorkload(view, rng, jobs=3)
        workload.start()
        churn(workload, rng, 10)
        assert not second.leads()
        assert job_reconciles(second) == 0  # a standby writes nothing
        first.stop(signal.SIGKILL)
        wait_for("the standby to lead", second.leads, timeout=TAKEOVER)
        churn(workload, rng, 10)
        assert wait_converged(workload.expected, view, timeout=180) == []
        assert job_reconciles(second) > 0
    finally:
        first.stop()
        second.stop()
