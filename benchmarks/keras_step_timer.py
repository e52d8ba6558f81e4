"""Overhead of the Keras step timer (`bigmodel.runtime.keras.StepTimer`) on the TensorFlow
example, measured against the same fit without it.

Modes, interleaved round by round in one process (alternating their order, so drift hits
both alike): `off` (the example's model and data, `model.fit` without the callback) and
`on` (with it, publishing to a stats file as in a pod: the first step, then at most every
0.1 s and each epoch's loss). Each round fits
`--steps` batches; the report gives, in wall time and in the process's CPU time (all its
threads), the median ms/step per mode and the median over rounds of `on`'s overhead
against the `off` fit of the same round; the best (fastest) round of each mode and their
ratio, the estimate least disturbed by other work on a shared machine; and the timer's own
cost per step (begin, end, and its share of publishing) measured alone. Needs the
`tensorflow` extra and the repository's `operator/` directory.

    python benchmarks/keras_step_timer.py --rounds 21 --steps 400 --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # Keras 2, as the example runs

import tensorflow as tf

from bigmodel.runtime.example_trainer_tf import build_model, dataset
from bigmodel.runtime.keras import StepTimer
from bigmodel.runtime.shared_stats import StatsFile, default_directory
from bigmodel.runtime.steps import WallStepTimer


def parse_args() -> argparse.Namespace:
    """The example's size and the measurement plan."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=32, help="the example's default")
    parser.add_argument("--width", type=int, default=64, help="the example's default")
    parser.add_argument("--steps", type=int, default=300, help="batches per round")
    parser.add_argument("--rounds", type=int, default=15, help="rounds per mode")
    parser.add_argument("--threads", type=int, default=0, help="TF threads (0: auto)")
    return parser.parse_args()


def fit_ms_per_step(model: Any, data: Any, steps: int, callbacks: list[Any]) -> dict[str, float]:
    """Wall and CPU milliseconds per step of one fit of `steps` batches."""
    wall, cpu = time.perf_counter(), time.process_time()
    model.fit(data, epochs=1, steps_per_epoch=steps, callbacks=callbacks, verbose=0)
    return {
        "wall": (time.perf_counter() - wall) * 1000 / steps,
        "cpu": (time.process_time() - cpu) * 1000 / steps,
    }


def timer_us_per_step(timer: WallStepTimer, steps: int = 100_000) -> float:
    """The timer's own work per step (begin, end, publishing when due), without Keras."""
    began = time.perf_counter()
    for _ in range(steps):
        timer.begin()
        timer.end()
    return (time.perf_counter() - began) * 1e6 / steps


def main() -> None:
    args = parse_args()
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    model = build_model(args.width, 1e-2)
    data = dataset(args.batch_size)
    with tempfile.TemporaryDirectory(dir=default_directory()) as tmp:  # /dev/shm, as in a pod
        stats = StatsFile(Path(tmp) / "rank-0")
        timer = WallStepTimer(publish=stats.write)  # closed by the callback: a no-op here

        def run(mode: str) -> dict[str, float]:
            callbacks = [StepTimer(timer)] if mode == "on" else []
            return fit_ms_per_step(model, data, args.steps, callbacks)

        run("off"), run("on")  # warm-up: tracing, first allocations
        rounds = []
        for round_ in range(args.rounds):
            order = ("off", "on") if round_ % 2 == 0 else ("on", "off")
            rounds.append({mode: run(mode) for mode in order})
        timer_us = timer_us_per_step(timer)
        stats.close()
    report: dict[str, Any] = {
        "machine": f"{platform.processor() or platform.machine()}, Python "
        f"{platform.python_version()}, tensorflow {tf.__version__}, keras {tf.keras.__name__}",
        "steps_per_round": args.steps,
        "rounds": args.rounds,
        "timer_us_per_step": round(timer_us, 2),
    }
    for clock in ("wall", "cpu"):
        overheads = [r["on"][clock] / r["off"][clock] - 1 for r in rounds]
        for mode in ("off", "on"):
            ms = statistics.median(r[mode][clock] for r in rounds)
            report[f"{clock}_{mode}_ms_per_step"] = round(ms, 4)
        report[f"{clock}_overhead_median"] = f"{statistics.median(overheads):+.2%}"
        best = {mode: min(r[mode][clock] for r in rounds) for mode in ("off", "on")}
        report[f"{clock}_best_ms_per_step"] = {m: round(v, 4) for m, v in best.items()}
        report[f"{clock}_overhead_best"] = f"{best['on'] / best['off'] - 1:+.2%}"
    report["cpu_overhead_rounds"] = [f"{r['on']['cpu'] / r['off']['cpu'] - 1:+.2%}" for r in rounds]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
