"""Dask and Spark jobs: what the operator and its telemetry cost.

- `e2e`: an example through the operator in a private sandbox (apply -> the client's or
  driver's result line in its log) against the same engine started by hand on this host
  (the same commands: scheduler or master, 2 workers, the example), interleaved, `--rounds`
  each. Goal: operator <= 1.3 x by hand.
- `overhead`: the telemetry's cost on Dask workers: two clusters of 2 workers, one with the
  task-time preload and one without, run the same CPU-bound tasks in interleaved rounds
  (order rotated); the median seconds per round of each. Goal: on <= 1.01 x off.
- `plugin`: what the preload adds per task, without the noise of a cluster: the plugin's
  `transition` calls of one task's life (ready -> executing -> memory -> released), timed
  over `--tasks` tasks against a worker state like Dask's, in microseconds per task.

Run: .venv/bin/python benchmarks/dask_spark.py e2e --engine dask|spark [--rounds 3]
     .venv/bin/python benchmarks/dask_spark.py overhead [--rounds 15] [--tasks 400]
     .venv/bin/python benchmarks/dask_spark.py plugin [--tasks 200000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from kubesandbox.testing import start_sandbox, wait_for
from support.engines import ENGINE_ENV, dask_cluster, spark_cluster
from support.harness import REPO, Cluster, Operator

EXAMPLES = {"dask": ("dask-job.yaml", "client"), "spark": ("spark-job.yaml", "driver")}


def _example(engine: str) -> dict[str, Any]:
    file, _ = EXAMPLES[engine]
    documents = yaml.safe_load_all((REPO / "examples" / file).read_text())
    found: dict[str, Any] = next(d for d in documents if d and d["kind"] == "BigModelJob")
    return found


def _has_result(text: str) -> bool:
    return any(line.startswith("{") for line in text.splitlines())


def by_hand(engine: str, work: Path) -> float:
    """Seconds from starting the engine's processes to the example's result (the client
    starts at once, as a user would; Dask's client retries until the scheduler listens)."""
    spec = _example(engine)["spec"]
    program = [sys.executable, *spec["command"][1:], *spec["args"]]
    began = time.monotonic()
    if engine == "dask":
        with dask_cluster(work) as cluster:
            env = {**os.environ, **ENGINE_ENV, "DASK_SCHEDULER_ADDRESS": cluster.address}
            out = subprocess.run(program, env=env, capture_output=True, text=True, check=True)
            seconds = time.monotonic() - began  # the result is in: stopping is not counted
    else:
        with spark_cluster(work) as spark:
            conf = (
                f"--master {spark.master} --conf spark.driver.host=127.0.0.1"
                f" --conf spark.ui.port={spark.driver_ui_port} --conf spark.executor.cores=1"
                " --conf spark.executor.memory=1024m pyspark-shell"
            )
            master = spark.master.removeprefix("spark://")
            waiter = [sys.executable, "-m", "bigmodel.runtime.await_address", master, "--"]
            env = {**os.environ, **ENGINE_ENV, "PYSPARK_SUBMIT_ARGS": conf}
            out = subprocess.run(
                [*waiter, *program], env=env, capture_output=True, text=True, check=True
            )
            seconds = time.monotonic() - began
    assert _has_result(out.stdout), out.stdout + out.stderr[-2000:]
    return seconds


def through_operator(engine: str, cluster: Cluster, name: str) -> float:
    """Seconds from `kubectl apply` to the example's result in the client or driver log."""
    _, logged = EXAMPLES[engine]
    began = time.monotonic()
    cluster.apply_job(name, _example(engine)["spec"])
    pod = f"{name}-{logged}"

    def result() -> bool:
        try:
            return _has_result(cluster.kubectl("logs", pod))
        except subprocess.CalledProcessError:
            return False

    wait_for(f"{pod}'s result", result, 1200)
    seconds = time.monotonic() - began
    cluster.wait_phase(name, "Succeeded", timeout=600)
    cluster.kubectl("delete", "bmj", name, "--wait=true")
    return seconds


def e2e(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="dask-spark-"))
    hand: list[float] = []
    operated: list[float] = []
    with start_sandbox(work / "sandbox") as running:
        running.kubectl("apply", "-f", str(REPO / "crds"))
        running.kubectl("create", "namespace", "bench")
        with Operator(running, "bench", work / "operator.log"):
            cluster = Cluster(running, "bench")
            for round_ in range(args.rounds):
                logs = work / f"hand-{round_}"
                logs.mkdir()
                hand.append(by_hand(args.engine, logs))
                operated.append(through_operator(args.engine, cluster, f"bench-{round_}"))
                print(f"round {round_}: by hand {hand[-1]:.1f} s, operator {operated[-1]:.1f} s")
    ratio = statistics.median(operated) / statistics.median(hand)
    print(
        json.dumps(
            {
                "engine": args.engine,
                "by_hand_s": hand,
                "operator_s": operated,
                "median_ratio": round(ratio, 3),
            }
        )
    )


def _cpu_task(n: int) -> int:
    return sum(i * i for i in range(n))


def overhead(args: argparse.Namespace) -> None:
    from distributed import Client

    work = Path(tempfile.mkdtemp(prefix="dask-overhead-"))
    (work / "on").mkdir()
    (work / "off").mkdir()
    times: dict[str, list[float]] = {"on": [], "off": []}
    with (
        dask_cluster(work / "on", telemetry=True) as on,
        dask_cluster(work / "off", telemetry=False) as off,
        Client(on.address) as client_on,
        Client(off.address) as client_off,
    ):
        clients = {"on": client_on, "off": client_off}
        for client in clients.values():
            client.wait_for_workers(2, timeout=300)
            client.gather(client.map(_cpu_task, [1000] * 20, pure=False))  # warm up

        def one(client: Any) -> Callable[[], float]:
            def run() -> float:
                began = time.perf_counter()
                client.gather(client.map(_cpu_task, [args.work] * args.tasks, pure=False))
                return time.perf_counter() - began

            return run

        for round_ in range(args.rounds):
            order = ["on", "off"] if round_ % 2 == 0 else ["off", "on"]
            for mode in order:
                times[mode].append(one(clients[mode])())
    on_s, off_s = statistics.median(times["on"]), statistics.median(times["off"])
    print(
        json.dumps(
            {
                "tasks_per_round": args.tasks,
                "rounds": args.rounds,
                "median_on_s": round(on_s, 4),
                "median_off_s": round(off_s, 4),
                "on_over_off": round(on_s / off_s, 4),
            }
        )
    )


def plugin(args: argparse.Namespace) -> None:
    from types import SimpleNamespace

    from bigmodel.runtime.dask_tasks import TaskSeconds

    seconds = TaskSeconds("127.0.0.1", 0)
    tasks = {
        key: SimpleNamespace(startstops=[{"action": "compute", "start": 1.0, "stop": 1.01}])
        for key in range(args.tasks)
    }
    seconds._worker = SimpleNamespace(state=SimpleNamespace(tasks=tasks))  # type: ignore[assignment]
    life = (("waiting", "ready"), ("ready", "executing"), ("executing", "memory"))
    began = time.perf_counter()
    for key in tasks:
        for start, finish in life:
            seconds.transition(key, start, finish)
    per_task = (time.perf_counter() - began) / args.tasks
    assert seconds.tally.totals().tasks == args.tasks
    print(json.dumps({"tasks": args.tasks, "microseconds_per_task": round(per_task * 1e6, 3)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    modes = parser.add_subparsers(dest="mode", required=True)
    e2e_mode = modes.add_parser("e2e")
    e2e_mode.add_argument("--engine", choices=sorted(EXAMPLES), default="dask")
    e2e_mode.add_argument("--rounds", type=int, default=3)
    overhead_mode = modes.add_parser("overhead")
    overhead_mode.add_argument("--rounds", type=int, default=15)
    overhead_mode.add_argument("--tasks", type=int, default=400)
    overhead_mode.add_argument("--work", type=int, default=20_000, help="loop length per task")
    plugin_mode = modes.add_parser("plugin")
    plugin_mode.add_argument("--tasks", type=int, default=200_000)
    args = parser.parse_args()
    {"e2e": e2e, "overhead": overhead, "plugin": plugin}[args.mode](args)


if __name__ == "__main__":
    main()
