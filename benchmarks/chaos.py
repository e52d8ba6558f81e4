"""Chaos and fuzz suites, long versions (the short ones run in `make test`); each prints
what it did, what held, and how long the operator took to converge.

    crashes    SIGKILLs of the operator at random moments while jobs on simulated nodes
               are created, deleted, their pods failed or deleted (default 50 kills, 12 jobs)
    failover   two replicas with leader election, the leader SIGKILLed while jobs churn
               (default 5 kills, 8 jobs): each takeover's time, and the same invariants
    faults     each API fault alone, then all at once, during jobs of real torchrun pods
               (the example trainer) and of simulated nodes; phases and restarts compared
               with a run without faults
    training   SIGKILLs of training worker processes mid-training (default 20), then an
               eviction and a lost node: each time the gang resumes from the last checkpoint
    fuzz       hypothesis-generated BigModelJob and BigModelService specs (default 10,000)
    telemetry  collection rounds over pods that answer slowly, with garbage, huge pages or
               not at all: the reasons, and each round's time

Run: .venv/bin/python benchmarks/chaos.py SUITE [options] (`SUITE --help` lists them).
Each suite starts its own sandbox (`kubesandbox up`) in a temporary directory; `--keep DIR`
keeps it (logs, request log, operator log).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from hypothesis import HealthCheck, given, seed, settings
from prometheus_client import CollectorRegistry

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from bigmodel.api import JOB_KIND
from bigmodel.telemetry.aggregate import StragglerPolicy
from bigmodel.telemetry.collect import ScrapeLimits, new_session
from bigmodel.telemetry.export import OperatorMetrics
from bigmodel.telemetry.observe import TelemetryState, observe
from chaos_failover import failover_options, run_failover
from kubesandbox.apiserver.http import requestlog
from kubesandbox.testing import RunningSandbox, probing, start_sandbox
from support.badpods import EXPECTED, BadPods
from support.chaos import (
    CHAOS_TIMERS,
    ChurnWorkload,
    JobsView,
    OperatorKiller,
    run_until,
    wait_converged,
)
from support.fuzzing import Fuzzed, check, resources
from support.harness import REPO, Operator
from support.scripted import (
    FAULTS,
    SCRIPTS,
    ScriptedJobs,
    counted_errors,
    logged_errors,
    operator_faults,
    trainer,
)
from support.training import Disruptions, trainer_spec


@contextlib.contextmanager
def sandbox(args: argparse.Namespace, *options: str) -> Iterator[tuple[RunningSandbox, Path]]:
    """A private sandbox with the project's CRDs and a namespace `chaos`; its directory."""
    work = Path(tempfile.mkdtemp(prefix="chaos-"))
    try:
        with start_sandbox(work / "sandbox", *options) as running:
            running.kubectl("apply", "-f", str(REPO / "crds"))
            running.kubectl("create", "namespace", "chaos")
            yield running, work
    finally:
        if args.keep:
            shutil.copytree(work, args.keep / f"{args.suite}-{int(time.time())}")
        shutil.rmtree(work, ignore_errors=True)


def report(figures: dict[str, object]) -> None:
    """One JSON line of figures (what benchmarks/README.md quotes)."""
    print(json.dumps(figures, sort_keys=False), flush=True)


# -- operator crashes ------------------------------------------------------------------------


def crashes_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=12, help="jobs alive at a time (about)")
    parser.add_argument(
        "--alive",
        type=float,
        nargs=2,
        default=(0.5, 4.0),
        help="seconds the operator lives before each SIGKILL, drawn between",
    )


def crashes(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    with sandbox(args, "--simulated-nodes", "2", "--nodes", "0") as (running, work):
        view = JobsView(running, "chaos")
        workload = ChurnWorkload(view, rng, jobs=args.jobs)
        workload.start()
        operator = Operator(running, "chaos", work / "operator.log", CHAOS_TIMERS)
        alive = (args.alive[0], args.alive[1])
        killer = OperatorKiller(operator, args.kills, rng, alive)
        began = time.monotonic()
        killer.start()
        try:
            run_until(lambda: not killer.is_alive(), workload.step, (0.2, 0.8), rng)
            killer.join()
            churned = time.monotonic() - began
            settle = time.monotonic()
            problems = wait_converged(workload.expected, view, timeout=300)
            converged = time.monotonic() - settle
        finally:
            operator.stop()
    expected = workload.expected
    report(
        {
            "suite": "crashes",
            "seed": args.seed,
            "kills": killer.done,
            "error": repr(killer.error) if killer.error else None,
            "actions": dict(workload.actions),
            "live_jobs": len(expected.restarts),
            "deleted_jobs": len(expected.deleted),
            "restarts_expected": sum(expected.restarts.values()),
            "churn_seconds": round(churned, 1),
            "converge_seconds": round(converged, 1),
            "problems": problems,
        }
    )
    return 1 if problems or killer.error else 0


def failover(args: argparse.Namespace) -> int:
    with sandbox(args, "--simulated-nodes", "2", "--nodes", "0") as (running, work):
        figures = run_failover(args, running, work)
    report(figures)
    return 1 if figures["problems"] else 0


# -- API faults -------------------------------------------------------------------------------


def faults_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trainers", type=int, default=1, help="real torchrun jobs per run")
    parser.add_argument("--copies", type=int, default=3, help="of each simulated job per run")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per run")


@dataclass
class FaultRun:
    """One run of the scripted jobs: its faults, how the jobs ended, the errors counted."""

    run: str
    seconds: float
    injected: dict[str, int]
    endings: dict[str, tuple[str, int]]
    problems: list[str]
    errors_logged: dict[str, int]
    errors_counted: dict[str, int]
    liveness: dict[str, int]
    """Liveness probes during the run, by HTTP code (every half second, as a kubelet would)."""

    @property
    def counted_right(self) -> bool:
        """The operator counted each error code as often as the sandbox injected it."""
        return self.errors_counted == self.errors_logged


def _fault_run(
    running: RunningSandbox, work: Path, args: argparse.Namespace, kinds: list[str] | None
) -> FaultRun:
    """One run of the scripted jobs, under the faults of `kinds` (None: no faults)."""
    name = "baseline" if kinds is None else kinds[0] if len(kinds) == 1 else "all"
    namespace = "faults-" + name.replace(":", "-")
    running.kubectl("create", "namespace", namespace)
    view = JobsView(running, namespace)
    operator = Operator(running, namespace, work / f"operator-{namespace}.log", CHAOS_TIMERS)
    log = running.state_dir / requestlog.FILENAME
    since = len(requestlog.read(log))
    trainers = tuple(trainer(f"train-{i}") for i in range(args.trainers))
    copies = tuple(replace(s, name=f"{s.name}-{i}") for s in SCRIPTS for i in range(args.copies))
    jobs = ScriptedJobs(view, (*copies, *trainers))
    rules = [] if kinds is None else operator_faults(namespace, *kinds)
    began = time.monotonic()
    try:
        with running.faults.injecting(rules, seed=args.seed) as faults:
            operator.start()  # under faults from its first request: watches too
            jobs.start()
            with probing(operator.health_port, "/healthz") as liveness:
                run_until(jobs.done, jobs.step, (0.2, 0.5), random.Random(args.seed), args.timeout)
            injected = faults.injected()
        seconds = time.monotonic() - began
        logged, counted = logged_errors(log, since), counted_errors(operator)
    finally:
        operator.stop()
    snap = view.snapshot()
    statuses = {s.name: snap.jobs[s.name].get("status") or {} for s in jobs.scripts}
    endings = {n: (st.get("phase", ""), st.get("restarts", 0)) for n, st in statuses.items()}
    return FaultRun(
        name,
        round(seconds, 1),
        injected,
        endings,
        jobs.problems(),
        dict(logged),
        dict(counted),
        {str(code): n for code, n in liveness.items()},
    )


def faults(args: argparse.Namespace) -> int:
    failed = 0
    with sandbox(args, "--simulated-nodes", "2") as (running, work):
        baseline = _fault_run(running, work, args, None)
        report({"suite": "faults", **asdict(baseline)})
        for kinds in [[kind] for kind in FAULTS] + [list(FAULTS)]:
            result = _fault_run(running, work, args, kinds)
            same = result.endings == baseline.endings
            alive = set(result.liveness) <= {"200"}
            failed += bool(result.problems) or not same or not result.counted_right or not alive
            report(
                {
                    "suite": "faults",
                    **asdict(result),
                    "same_endings": same,
                    "errors_counted_right": result.counted_right,
                    "liveness_never_failed": alive,
                }
            )
    return 1 if failed else 0


# -- training processes killed ----------------------------------------------------------------


def training_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--step-seconds", type=float, default=0.1, help="slowdown per step")


def training(args: argparse.Namespace) -> int:
    kinds = ["kill"] * args.kills + ["evict", "node-lost"]
    with sandbox(args, "--nodes", "3") as (running, work):
        view = JobsView(running, "chaos")
        operator = Operator(running, "chaos", work / "operator.log", CHAOS_TIMERS)
        operator.start()
        try:
            steps = 10 * len(kinds) + 20
            view.create("trained", trainer_spec("trained", steps, len(kinds), args.step_seconds))
            run = Disruptions(running, view, "trained", random.Random(args.seed))
            began = time.monotonic()
            for kind in kinds:
                run.disrupt(kind)
            status = run.finish()
            seconds = time.monotonic() - began
        finally:
            operator.stop()
    from_zero = [r for r in run.resumed if r[1] == 0 or r[1] < r[0]]
    report(
        {
            "suite": "training",
            "disruptions": dict(Counter(kinds)),
            "restarts": status["restarts"],
            "phase": status["phase"],
            "resumed": run.resumed,
            "resumed_wrong": from_zero,
            "resume_seconds_median": round(statistics.median(run.seconds), 1),
            "resume_seconds_max": round(max(run.seconds), 1),
            "seconds": round(seconds, 1),
        }
    )
    return 1 if from_zero or status["restarts"] != len(kinds) else 0


# -- fuzzed specs -------------------------------------------------------------------------------


def fuzz_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--examples", type=int, default=5_000, help="per kind (default 5,000)")


def _fuzz_kind(
    kind: str, args: argparse.Namespace, outcomes: Counter[str], failures: list[str]
) -> None:
    """`args.examples` specs of `kind`, each checked; outcomes counted, failures kept."""

    @settings(
        max_examples=args.examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @seed(args.seed)
    @given(resources(kind))
    def one(fuzzed: Fuzzed) -> None:
        try:
            outcomes[f"{kind} {check(kind, fuzzed)}"] += 1
        except Exception as exc:  # counted and shown; the run goes on
            outcomes[f"{kind} FAILED"] += 1
            failures.append(f"{kind} {fuzzed.changed}: {exc!r}"[:500])

    one()


def fuzz(args: argparse.Namespace) -> int:
    outcomes: Counter[str] = Counter()
    failures: list[str] = []
    began = time.monotonic()
    for kind in ("BigModelJob", "BigModelService"):
        _fuzz_kind(kind, args, outcomes, failures)
    report(
        {
            "suite": "fuzz",
            "seed": args.seed,
            "examples": sum(outcomes.values()),
            "outcomes": dict(sorted(outcomes.items())),
            "seconds": round(time.monotonic() - began, 1),
            "failures": failures[:10],
        }
    )
    return 1 if failures else 0


# -- telemetry under bad pods -----------------------------------------------------------------


def telemetry_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--each", type=int, default=20, help="pods of each bad kind")
    parser.add_argument("--rounds", type=int, default=5)


def telemetry(args: argparse.Namespace) -> int:
    return asyncio.run(_telemetry(args))


async def _telemetry(args: argparse.Namespace) -> int:
    kinds = [kind for kind in EXPECTED for _ in range(args.each)]
    pods = await BadPods().start(kinds)
    limits = ScrapeLimits()
    metrics = OperatorMetrics(CollectorRegistry())
    seconds, wrong = [], 0
    state = TelemetryState()
    try:
        async with new_session() as session:
            for _ in range(args.rounds):
                began = time.monotonic()
                seen = await observe(
                    JOB_KIND,
                    "chaos",
                    "bad",
                    pods.targets,
                    StragglerPolicy(),
                    state,
                    session,
                    limits=limits,
                    metrics=metrics,
                )
                seconds.append(time.monotonic() - began)
                state = seen.state
                wrong += sum(
                    1 for k, s in seen.scrapes.items() if s.reason != EXPECTED[pods.kinds[k]]
                )
    finally:
        await pods.close()
    report(
        {
            "suite": "telemetry",
            "pods": len(kinds),
            "kinds": list(EXPECTED),
            "rounds": args.rounds,
            "timeout": limits.timeout,
            "concurrency": limits.concurrency,
            "round_seconds": [round(s, 2) for s in seconds],
            "wrong_reasons": wrong,
            "n": seen.telemetry.get("n"),
        }
    )
    return 1 if wrong else 0


SUITES = {
    "crashes": (crashes_options, crashes),
    "faults": (faults_options, faults),
    "training": (training_options, training),
    "failover": (failover_options, failover),
    "fuzz": (fuzz_options, fuzz),
    "telemetry": (telemetry_options, telemetry),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="suite", required=True)
    for name, (options, _) in SUITES.items():
        suite = sub.add_parser(name)
        suite.add_argument("--seed", type=int, default=14)
        suite.add_argument("--keep", type=Path, help="copy the sandbox's directory here")
        options(suite)
    args = parser.parse_args(argv)
    return SUITES[args.suite][1](args)


if __name__ == "__main__":
    sys.exit(main())
