"""Dask and Spark jobs: what the operator and its telemetry cost.

- `e2e`: an example through the operator in a private sandbox (apply -> the client's or
  driver's result line in its log) against the same engine started by hand on this host
  (the same commands: scheduler or master, 2 workers, the example), interleaved, `--rounds`
  each. Goal: operator <= 1.3 x by hand.
- `overhead`: the telemetry's cost on Dask workers: one cluster of 2 workers runs the same
  CPU-bound tasks in interleaved rounds (order rotated) with the preload's plugin installed
  ("on") and removed ("off"); the median seconds per round of each, wall and the workers'
  CPU (process time), and the median and quartiles of the paired ratios (each "on" round
  over the "off" round beside it, which cancels the machine's slower drifts). Goal: on <=
  1.01 x off.
- `plugin`: what the preload adds per task, without the noise of a cluster: the plugin's
  `transition` calls of one task's life (ready -> executing -> memory -> released), timed
  over `--tasks` tasks against a worker state like Dask's, in microseconds per task.

Run: .venv/bin/python benchmarks/dask_spark.py e2e --engine dask|spark [--rounds 3]
     .venv/bin/python benchmarks/dask_spark.py overhead [--rounds 15] [--tasks 400] [--control]
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


async def _install(dask_worker: Any) -> None:
    from bigmodel.runtime.dask_tasks import PLUGIN_NAME, TaskSeconds

    await dask_worker.plugin_add(TaskSeconds("127.0.0.1", 0), name=PLUGIN_NAME)


async def _remove(dask_worker: Any) -> None:
    from bigmodel.runtime.dask_tasks import PLUGIN_NAME

    await dask_worker.plugin_remove(PLUGIN_NAME)


def overhead(args: argparse.Namespace) -> None:
    """One cluster, the telemetry plugin installed for the "on" rounds and removed for the
    "off" ones (what the preload installs: the same plugin and its /metrics thread): two
    clusters side by side differ by a few percent of CPU with no plugin in either (their
    processes land differently on the cores), which hid the plugin's cost."""
    from distributed import Client

    work = Path(tempfile.mkdtemp(prefix="dask-overhead-"))
    times: dict[str, list[float]] = {"on": [], "off": []}
    cpu_times: dict[str, list[float]] = {"on": [], "off": []}
    with dask_cluster(work, telemetry=False) as cluster, Client(cluster.address) as client:
        client.wait_for_workers(2, timeout=300)
        client.gather(client.map(_cpu_task, [1000] * 20, pure=False))  # warm up

        def one(mode: str) -> tuple[float, float]:
            """The round's wall seconds and its workers' CPU seconds (process time, which
            other processes on the machine do not inflate as they do the wall time)."""
            if mode == "on" and not args.control:
                client.run(_install)
            cpu_before = sum(client.run(time.process_time).values())
            began = time.perf_counter()
            client.gather(client.map(_cpu_task, [args.work] * args.tasks, pure=False))
            wall = time.perf_counter() - began
            cpu = sum(client.run(time.process_time).values()) - cpu_before
            if mode == "on" and not args.control:
                client.run(_remove)
            return wall, cpu

        for round_ in range(args.rounds):
            for mode in ("on", "off") if round_ % 2 == 0 else ("off", "on"):
                wall, cpu = one(mode)
                times[mode].append(wall)
                cpu_times[mode].append(cpu)
    figures: dict[str, Any] = {"tasks_per_round": args.tasks, "rounds": args.rounds}
    for what, samples in (("wall", times), ("worker_cpu", cpu_times)):
        on_s, off_s = statistics.median(samples["on"]), statistics.median(samples["off"])
        figures |= {
            f"median_{what}_on_s": round(on_s, 4),
            f"median_{what}_off_s": round(off_s, 4),
            f"{what}_on_over_off": round(on_s / off_s, 4),
        }
        ratios = [on / off for on, off in zip(samples["on"], samples["off"], strict=True)]
        quartiles = statistics.quantiles(ratios, n=4)
        figures[f"{what}_paired_ratio_q1_median_q3"] = [
            round(quartiles[0], 4),
            round(statistics.median(ratios), 4),
            round(quartiles[2], 4),
        ]
    print(json.dumps(figures))


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
    overhead_mode.add_argument(
        "--control",
        action="store_true",
        help="never install the plugin: the comparison's own noise (expect 1.0)",
    )
    plugin_mode = modes.add_parser("plugin")
    plugin_mode.add_argument("--tasks", type=int, default=200_000)
    args = parser.parse_args()
    {"e2e": e2e, "overhead": overhead, "plugin": plugin}[args.mode](args)


if __name__ == "__main__":
    main()
