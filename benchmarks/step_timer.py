"""Overhead of the in-pod step timer on the example model, measured against itself.

Modes, interleaved trial by trial in one process (rotating their order, so drift and clock
changes hit all of them alike): `plain` (no timing), `timer` (`StepTimer`, publishing to a
stats file as in a pod), and on CUDA `sync` (a naive timer: `torch.cuda.synchronize()` after
every step). Each trial times `--steps` steps with one synchronisation at its end. Reports
the median ms/step per mode and the median over trials of each mode's overhead against the
plain run of the same trial. Needs only torch and the repository's `operator/` directory.

    python benchmarks/step_timer.py --device cpu
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))

import torch

from bigmodel.runtime.model import CharCorpus, TinyLM, lm_loss, synthetic_corpus
from bigmodel.runtime.shared_stats import StatsFile
from bigmodel.runtime.timer import StepTimer

Step = Callable[[int], None]


def parse_args() -> argparse.Namespace:
    """The model size and the measurement plan."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_device = "cuda" if torch.cuda.is_available() else "cpu"
    parser.add_argument("--device", choices=["cpu", "cuda"], default=default_device)
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32", help="autocast")
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, help="default: d_model / 64, at least 1")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per trial")
    parser.add_argument("--trials", type=int, default=5, help="trials per mode")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    return parser.parse_args()


def make_step(args: argparse.Namespace, device: torch.device) -> tuple[Step, int]:
    """One training step of the example model on pre-made batches, and its parameter count."""
    corpus = CharCorpus(synthetic_corpus())
    heads = args.heads or max(1, args.d_model // 64)
    torch.manual_seed(0)
    model = TinyLM(len(corpus.vocab), args.d_model, args.layers, heads, args.seq_len).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batches = [
        tuple(t.to(device) for t in corpus.batch(args.batch_size, args.seq_len, seed))
        for seed in range(4)
    ]
    autocast = args.dtype == "bf16"

    def step(index: int) -> None:
        inputs, targets = batches[index % len(batches)]
        with torch.autocast(device.type, torch.bfloat16, enabled=autocast):
            loss = lm_loss(model(inputs), targets)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step, sum(p.numel() for p in model.parameters())


def synchronize(device: torch.device) -> None:
    """Wait for the device (only between trials and, in `sync` mode, per step)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_trial(mode: str, step: Step, steps: int, device: torch.device, timer: StepTimer) -> float:
    """Seconds per step of `steps` steps in `mode`."""
    naive_times: list[float] = []
    synchronize(device)
    begin = time.perf_counter()
    for index in range(steps):
        if mode == "plain":
            step(index)
        elif mode == "timer":
            with timer.step():
                step(index)
        else:  # sync: the naive timer that the step timer avoids
            started = time.perf_counter()
            step(index)
            synchronize(device)
            naive_times.append(time.perf_counter() - started)
    synchronize(device)
    return (time.perf_counter() - begin) / steps


def main() -> int:
    """Measure, print a table and one JSON line."""
    args = parse_args()
    device = torch.device(args.device)
    step, parameters = make_step(args, device)
    for index in range(args.warmup):
        step(index)
    modes = ["plain", "timer"] + (["sync"] if device.type == "cuda" else [])
    seconds: dict[str, list[float]] = {mode: [] for mode in modes}
    with tempfile.TemporaryDirectory() as directory:
        stats_file = StatsFile(Path(directory) / "stats")
        timer = StepTimer(device, publish=stats_file.write, on_close=stats_file.close)
        for trial in range(args.trials):
            rotation = trial % len(modes)
            for mode in modes[rotation:] + modes[:rotation]:
                seconds[mode].append(run_trial(mode, step, args.steps, device, timer))
        timer.close()
    ms = {mode: statistics.median(values) * 1e3 for mode, values in seconds.items()}
    overhead = {
        mode: statistics.median(
            100 * (t / p - 1) for t, p in zip(seconds[mode], seconds["plain"], strict=True)
        )
        for mode in modes[1:]
    }
    print(f"{'mode':<6} {'ms/step':>9} {'overhead':>9}")
    for mode in modes:
        extra = f"{overhead[mode]:+8.2f}%" if mode in overhead else f"{'-':>9}"
        print(f"{mode:<6} {ms[mode]:9.3f} {extra}")
    result = {
        "benchmark": "step_timer",
        "config": vars(args),
        "parameters": parameters,
        "ms_per_step": {mode: round(value, 4) for mode, value in ms.items()},
        "overhead_pct": {mode: round(value, 3) for mode, value in overhead.items()},
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "timer_steps": timer.stats.steps,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
