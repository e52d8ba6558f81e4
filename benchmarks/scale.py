"""Scale of the sandbox and the operator, as ratios against baselines measured in the same run.

- sandbox: a bare client creates N headless Services + 4N pods (what the operator builds for N
  jobs of 4 nodes) at once, in a fresh sandbox on simulated nodes: its creation rate over the
  first and the last 1,000 objects (the sandbox's per-event cost must not grow with the
  cluster), and the time until all 4N pods run.
- burst: then, in another fresh sandbox, the same client creates N BigModelJobs at once with
  the operator running: the time until all 4N pods run, as a ratio to the bare client's.
  With `--rounds`, both alternate (medians compared), as other work may share the machine.
- steady: with those N jobs Running (nothing changing), the operator's CPU share of one core
  and its RSS over a window; baseline: the same operator idle before the jobs came.
- takeover: then (after steady) a standby beside the operator that ran the N jobs, which is
  then SIGKILLed: until the standby leads and has looked at every job (`scale_restart.py`).
- restart: then (after steady) a fresh operator in place of the one that ran the N jobs:
  until it is ready and has looked at every job, and its CPU meanwhile (`scale_restart.py`).
- start: the example trainer, 2 nodes x 2 processes on CPU: from creating the BigModelJob to
  rank 0's first logged step (DDP: every rank finished it), against the same torchrun command
  run by hand on this host; trials alternate, medians compared.

Run: .venv/bin/python benchmarks/scale.py [--jobs 1000]
     [--scenarios burst,steady,takeover,restart,start]
     [--rounds 1] [--concurrency 16] [--window 60] [--trials 3] [--state-dir DIR]
     [--py-spy DIR]   (profiles of the operator and the sandbox during the last burst)
     [--baseline-operator CHECKOUT/operator]   (another checkout's operator's burst too,
                      in every round: before/after in one run, under the same load)
The jobs of burst and steady run on simulated nodes with `spec.metrics.enabled: false`: their
pods' addresses answer nothing, so there is nothing to scrape (`telemetry_collection.py`
measures scraping). The last line printed is the results as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from scale_burst import REPO, alternate
from scale_start import start_trials
from scale_support import BIN, NODES_PER_JOB


def _median(rounds: list[dict[str, Any]], part: str, key: str) -> float:
    return statistics.median(r[part][key] for r in rounds)


def report(results: dict[str, Any], jobs: int) -> None:
    """Print the figures and their ratios (medians over rounds), then the results as JSON."""
    rounds: list[dict[str, Any]] = results.get("rounds", [])
    if rounds:
        bare = rounds[-1]["bare"]
        print(f"sandbox, bare client, {jobs} Services + {jobs * NODES_PER_JOB} pods "
              f"({len(rounds)} round(s), medians):")  # fmt: skip
        first, last = _median(rounds, "bare", "first_rate"), _median(rounds, "bare", "last_rate")
        created = _median(rounds, "bare", "create_seconds")
        size = bare["chunk"]
        print(f"  created in {created:.1f} s; first {size} objects {first:.0f}/s, "
              f"last {last:.0f}/s (last/first {last / first:.2f})")  # fmt: skip
        chunks = ", ".join(f"{r:.0f}" for r in bare["chunk_rates"])
        print(f"  objects/s per {size} in the last round: {chunks}")
        print(f"  all pods Running after {_median(rounds, 'bare', 'all_running_seconds'):.1f} s"
              f" (sandbox CPU {bare['sandbox_cpu_seconds']:.1f} s in the last round)")  # fmt: skip
        results["sandbox_rate_ratio"] = last / first
    if rounds and "operator" in rounds[-1]:
        through = _median(rounds, "operator", "all_running_seconds")
        ratio = through / _median(rounds, "bare", "all_running_seconds")
        each = [r["operator"]["all_running_seconds"] / r["bare"]["all_running_seconds"]
                for r in rounds]  # fmt: skip
        op = rounds[-1]["operator"]
        print(f"operator, {jobs} BigModelJobs x {NODES_PER_JOB} nodes at once:")
        print(f"  all pods Running after {through:.1f} s: {ratio:.2f}x the bare client "
              f"(goal <= 1.3; rounds: {', '.join(f'{r:.2f}' for r in each)})")  # fmt: skip
        print(f"  CPU during the last burst: operator {op['operator_cpu_seconds']:.1f} s, "
              f"sandbox {op['sandbox_cpu_seconds']:.1f} s")  # fmt: skip
        idle = op["idle"]
        print(f"  idle operator: {idle['cpu_share']:.2%} of a core, {idle['rss_mb']:.0f} MB")
        results["burst_ratio"] = ratio
        if "baseline" in rounds[-1]:
            base = _median(rounds, "baseline", "all_running_seconds")
            results["baseline_burst_ratio"] = base_ratio = ratio * base / through
            each = [r["baseline"]["all_running_seconds"] / r["bare"]["all_running_seconds"]
                    for r in rounds]  # fmt: skip
            last = rounds[-1]["baseline"]
            print(f"  baseline operator: {base:.1f} s, {base_ratio:.2f}x the bare client "
                  f"(rounds: {', '.join(f'{r:.2f}' for r in each)}); this operator / "
                  f"baseline {through / base:.2f}; CPU during the last burst: baseline "
                  f"{last['operator_cpu_seconds']:.1f} s, sandbox "
                  f"{last['sandbox_cpu_seconds']:.1f} s")  # fmt: skip
        if "steady" in op:
            steady = op["steady"]
            print(f"steady state, {jobs} Running jobs, {steady['seconds']:.0f} s window: "
                  f"operator {steady['cpu_share']:.2%} of a core (goal <= 2%), "
                  f"{steady['rss_mb']:.0f} MB RSS (goal <= 150)")  # fmt: skip
        if "takeover" in op:
            over = op["takeover"]
            print(f"takeover of {jobs} Running jobs by a standby (ready after "
                  f"{over['standby_ready_seconds']:.1f} s, {over['standby_rss_mb']:.0f} MB, "
                  f"{over['standby_reconciles']:.0f} reconciles while standing by): leads "
                  f"{over['leading_seconds']:.1f} s after the leader's SIGKILL, every job looked "
                  f"at {over['looked_after_leading_seconds']:.1f} s later (goal <= 10), "
                  f"{over['cpu_share']:.0%} of a core meanwhile, "
                  f"{over['rss_mb']:.0f} MB RSS")  # fmt: skip
        if "restart" in op:
            again = op["restart"]
            print(f"restart over {jobs} Running jobs: ready after {again['ready_seconds']:.1f} s, "
                  f"every job looked at after {again['looked_seconds']:.1f} s (goal <= 10), "
                  f"{again['cpu_share']:.0%} of a core meanwhile (goal <= 100%), "
                  f"{again['rss_mb']:.0f} MB RSS")  # fmt: skip
    if "start" in results:
        start = results["start"]
        hand, through = statistics.median(start["hand"]), statistics.median(start["operator"])
        results["start_ratio"] = through / hand
        print(f"start latency (median of {len(start['hand'])}): by hand {hand:.1f} s, through "
              f"the operator {through:.1f} s: {through / hand:.2f}x (goal <= 1.3)")  # fmt: skip
    print(json.dumps(results))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000, help="BigModelJobs (x 4 nodes)")
    parser.add_argument(
        "--scenarios",
        default="burst,steady,start",
        help="comma-separated: sandbox (the bare client only), burst (sandbox, then the "
        "operator), steady (after the last burst), takeover and restart (after steady), start",
    )
    parser.add_argument("--rounds", type=int, default=1, help="bare/operator rounds, alternating")
    parser.add_argument("--concurrency", type=int, default=16, help="client requests in flight")
    parser.add_argument("--window", type=float, default=60, help="steady-state window, s")
    parser.add_argument("--idle-window", type=float, default=10, help="idle baseline window, s")
    parser.add_argument("--settle", type=float, default=10, help="pause before the window, s")
    parser.add_argument("--trials", type=int, default=3, help="start-latency trials of each")
    parser.add_argument("--state-dir", type=Path, help="keep logs here (default: temporary)")
    parser.add_argument("--py-spy", type=Path, help="profile the last burst into this directory")
    parser.add_argument(
        "--baseline-operator",
        type=Path,
        help="the operator/ directory of another checkout: its burst runs in every round "
        "too, between the bare client's and this checkout's, against the same sandbox code",
    )
    args = parser.parse_args()
    args.scenarios = set(args.scenarios.split(","))
    # pods run `torchrun`, `python`: the venv's, as `make` puts it first on PATH
    os.environ["PATH"] = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    state = args.state_dir or Path(tempfile.mkdtemp(prefix="bigmodel-scale-"))
    results: dict[str, Any] = {"jobs": args.jobs}
    if args.scenarios & {"sandbox", "burst", "steady"}:
        results["rounds"] = alternate(args, state)
    if "start" in args.scenarios:
        results["start"] = start_trials(args.trials, state / "start", REPO)
    report(results, args.jobs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
