"""Chaos, short: the operator SIGKILLed at random moments while jobs churn, API faults of
every kind at once, and training processes killed, evicted or their node lost. The long
versions, with figures, are `benchmarks/chaos.py` (benchmarks/README.md)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from kubesandbox.apiserver.http import requestlog
from kubesandbox.testing import RunningSandbox, wait_for
from support.chaos import (
    CHAOS_TIMERS,
    SIMULATED,
    ChurnWorkload,
    Expectations,
    JobsView,
    OperatorKiller,
    run_until,
    wait_converged,
)
from support.harness import Operator
from support.scripted import (
    SCRIPTS,
    ScriptedJobs,
    counted_errors,
    logged_errors,
    operator_faults,
    trainer,
)
from support.training import Disruptions, trainer_spec

pytestmark = pytest.mark.integration


def test_operator_sigkills_while_jobs_churn_lose_nothing_and_count_each_restart_once(
    sandbox: RunningSandbox, namespace: str, tmp_path: Path
) -> None:
    rng = random.Random(14)
    view = JobsView(sandbox, namespace)
    workload = ChurnWorkload(view, rng, jobs=4)
    workload.start()
    operator = Operator(sandbox, namespace, tmp_path / "operator.log", CHAOS_TIMERS)
    killer = OperatorKiller(operator, kills=5, rng=rng, alive=(0.5, 3.0))
    killer.start()
    try:
        run_until(lambda: not killer.is_alive(), workload.step, (0.2, 0.8), rng)
        killer.join()
        assert killer.error is None, killer.error
        assert wait_converged(workload.expected, view, timeout=120) == []
        assert workload.actions["pod failed"] + workload.actions["pod deleted"] > 0
    finally:
        operator.stop()


def test_api_faults_of_every_kind_at_once_change_no_ending_and_are_counted(
    sandbox: RunningSandbox, namespace: str, tmp_path: Path
) -> None:
    view = JobsView(sandbox, namespace)
    operator = Operator(sandbox, namespace, tmp_path / "operator.log", CHAOS_TIMERS)
    log = sandbox.state_dir / requestlog.FILENAME
    since = len(requestlog.read(log))
    jobs = ScriptedJobs(view, (*SCRIPTS, trainer("train")))
    try:
        with sandbox.faults.injecting(operator_faults(namespace), seed=14) as faults:
            operator.start()  # under faults from its first request: watches too
            jobs.start()
            run_until(jobs.done, jobs.step, (0.2, 0.5), random.Random(14), 240, jobs.describe)
            injected = faults.injected()
        assert jobs.problems() == []
        assert counted_errors(operator) == logged_errors(log, since)
        assert {"error:500", "conflict", "drop", "slow"} <= set(injected), injected
    finally:
        operator.stop()


def test_training_killed_or_evicted_resumes_from_its_checkpoint_and_completes(
    sandbox: RunningSandbox, namespace: str, tmp_path: Path
) -> None:
    view = JobsView(sandbox, namespace)
    with Operator(sandbox, namespace, tmp_path / "operator.log", CHAOS_TIMERS):
        view.create("trained", trainer_spec("trained", steps=40, restarts=2, step_seconds=0.1))
        run = Disruptions(sandbox, view, "trained", random.Random(14))
        for kind in ("kill", "evict"):
            run.disrupt(kind)
        assert run.finish()["restarts"] == 2
        for before, resumed in run.resumed:
            assert resumed >= before > 0  # the latest checkpoint, never step zero


def test_a_lost_node_restarts_the_gang_once_on_the_nodes_left(
    sandbox: RunningSandbox, namespace: str, tmp_path: Path
) -> None:
    view = JobsView(sandbox, namespace)
    with Operator(sandbox, namespace, tmp_path / "operator.log", CHAOS_TIMERS):
        view.create("lost", {**SIMULATED, "nodes": 2})
        expected = Expectations(restarts={"lost": 0})
        wait_for("running", lambda: expected.settled(view.snapshot(), "lost"))
        pod = view.snapshot().pods["lost"][0]
        assert pod["metadata"]["name"] in sandbox.faults.node_ready(
            pod["spec"]["node_name"], False, seconds=10
        )
        expected.restarts["lost"] = 1
        assert wait_converged(expected, view, timeout=60) == []
        events = view.events("lost")
        assert any(r == "GangRestart" and "DeletionByTaintManager" in m for r, m in events)


def test_a_gang_restart_is_not_stuck_on_pods_whose_deletion_the_watch_missed(
    sandbox: RunningSandbox, namespace: str, tmp_path: Path
) -> None:
    # Every watch of pods by the operator's informers ends at once with 410 Gone: they list
    # them again and again, and may miss a pod deleted in between.
    gone = f"gone:resources=pods,namespaces={namespace},user_agents=bigmodel-operator/"
    view = JobsView(sandbox, namespace)
    operator = Operator(sandbox, namespace, tmp_path / "operator.log", CHAOS_TIMERS)
    jobs = ScriptedJobs(view, (SCRIPTS[2],))  # restarts once, then succeeds
    try:
        with sandbox.faults.injecting([gone]) as faults:
            operator.start()
            jobs.start()
            run_until(jobs.done, jobs.step, (0.2, 0.5), random.Random(14), 120, jobs.describe)
            assert faults.injected()["gone"] > 0
        assert jobs.problems() == []
    finally:
        operator.stop()
