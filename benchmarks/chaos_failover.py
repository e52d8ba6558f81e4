"""The `failover` suite of `chaos.py`: two operator replicas with leader election, the leader
SIGKILLed again and again while jobs churn; each killed replica comes back as the standby.
Figures: each takeover's seconds (the kill -> the standby leads), and the chaos invariants
once the last leader has converged."""

from __future__ import annotations

import argparse
import random
import signal
import statistics
import time
from pathlib import Path
from typing import Any

from kubesandbox.testing import RunningSandbox, wait_for
from support.chaos import CHAOS_TIMERS, ChurnWorkload, JobsView, wait_converged
from support.harness import Operator

ELECTED = {**CHAOS_TIMERS, "BIGMODEL_LEADER_ELECTION": "true"}
TAKEOVER = 300.0


def failover_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kills", type=int, default=5, help="SIGKILLs of the leader")
    parser.add_argument("--jobs", type=int, default=8, help="jobs alive at a time (about)")
    parser.add_argument("--steps", type=int, default=15, help="churn actions between kills")


def run_failover(args: argparse.Namespace, running: RunningSandbox, work: Path) -> dict[str, Any]:
    """The suite's run in a fresh sandbox; its figures."""
    rng = random.Random(args.seed)
    view = JobsView(running, "chaos")
    replicas = [Operator(running, "chaos", work / f"operator-{i}.log", ELECTED) for i in range(2)]
    workload = ChurnWorkload(view, rng, jobs=args.jobs)
    takeovers: list[float] = []
    try:
        for replica in replicas:
            replica.start()
        leader = wait_for("a leader", lambda: next((r for r in replicas if r.leads()), None))
        workload.start()
        for _ in range(args.kills):
            for _ in range(args.steps):
                workload.step()
                time.sleep(rng.uniform(0.2, 0.8))
            standby = next(r for r in replicas if r is not leader)
            leader.stop(signal.SIGKILL)
            killed = time.monotonic()
            wait_for("the standby to lead", standby.leads, timeout=TAKEOVER)
            takeovers.append(time.monotonic() - killed)
            leader.start()  # back, as the standby
            leader = standby
        settle = time.monotonic()
        problems = wait_converged(workload.expected, view, timeout=300)
        converged = time.monotonic() - settle
    finally:
        for replica in replicas:
            replica.stop()
    return {
        "suite": "failover",
        "seed": args.seed,
        "kills": len(takeovers),
        "takeover_seconds": [round(t, 1) for t in takeovers],
        "takeover_median": round(statistics.median(takeovers), 1) if takeovers else None,
        "actions": dict(workload.actions),
        "live_jobs": len(workload.expected.restarts),
        "restarts_expected": sum(workload.expected.restarts.values()),
        "converge_seconds": round(converged, 1),
        "problems": problems,
    }
