"""Overhead of the instrumentation that names a straggler's cause, on the example model.

Modes, interleaved trial by trial in one process (rotating their order): `timer` (the step
timer as before: `StepTimer` publishing to a stats file) and `causes` (the same, plus the
parts of each step marked, `input_ready` and `communication_done`, and the machine sampler
thread reading the host, and the GPU through NVML where there is one, once a second). Each
trial times `--steps` steps of the example model with one synchronisation at its end.
Reports the median ms/step per mode, the median over trials of `causes` against the `timer`
run of the same trial, the CPU cost of the marks per step, and the sampler's CPU per
reading (and each NVML query's latency on a GPU). Needs only torch and `operator/`.

    python benchmarks/step_causes.py --device cpu
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))

import torch

from bigmodel.runtime.gpu import open_gpu_reader
from bigmodel.runtime.model import CharCorpus, TinyLM, lm_loss, synthetic_corpus
from bigmodel.runtime.sampler import MachineSampler
from bigmodel.runtime.shared_stats import StatsFile
from bigmodel.runtime.timer import StepTimer


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per trial")
    parser.add_argument("--trials", type=int, default=9, help="trials per mode")
    parser.add_argument("--warmup", type=int, default=4, help="untimed trials per mode first")
    return parser.parse_args()


def trial(
    args: argparse.Namespace, causes: bool, net: TinyLM, corpus: CharCorpus
) -> tuple[float, float]:
    """Wall and process CPU seconds per step of one trial (`causes`: parts marked and the
    sampler running; its thread's CPU counts)."""
    device = torch.device(args.device)
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3)
    with tempfile.TemporaryDirectory() as directory:
        stats = StatsFile(Path(directory) / "stats")
        timer = StepTimer(device, stats.write, stats.close)
        sampler = None
        if causes:
            sampler = MachineSampler(timer.set_machine, open_gpu_reader(os.environ, 0))
            sampler.start()
        began, cpu = time.perf_counter(), time.process_time()
        for step in range(args.steps):
            timer.start()
            inputs, targets = (
                t.to(device) for t in corpus.batch(args.batch_size, args.seq_len, step)
            )
            if causes:
                timer.input_ready()
            loss = lm_loss(net(inputs), targets)
            loss.backward()  # type: ignore[no-untyped-call]
            timer.stop()
            if causes:
                timer.communication_done()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = (time.perf_counter() - began) / args.steps
        cpu_seconds = (time.process_time() - cpu) / args.steps
        if sampler is not None:
            sampler.close()
        timer.close()
    return seconds, cpu_seconds


def marks_cpu_us(steps: int = 100_000) -> float:
    """CPU microseconds the two marks add to a step (empty steps, marked minus unmarked)."""

    def run(marked: bool) -> float:
        timer = StepTimer()
        began = time.process_time()
        for _ in range(steps):
            timer.start()
            if marked:
                timer.input_ready()
            timer.stop()
            if marked:
                timer.communication_done()
        return time.process_time() - began

    return (run(True) - run(False)) / steps * 1e6


def sampler_cpu_ms(readings: int = 200) -> float:
    """CPU milliseconds of one sampler reading (host, and GPU where there is one)."""
    sampler = MachineSampler(lambda sample: None, open_gpu_reader(os.environ, 0))
    began = time.thread_time()
    for _ in range(readings):
        sampler.sample()
    return (time.thread_time() - began) / readings * 1e3


def main() -> None:
    args = parse_args()
    torch.manual_seed(0)
    corpus = CharCorpus(synthetic_corpus())
    heads = max(1, args.d_model // 64)
    net = TinyLM(len(corpus.vocab), args.d_model, args.layers, heads, args.seq_len)
    net.to(args.device)
    for _ in range(args.warmup):  # the first trials run many times slower (allocator, caches)
        trial(args, False, net, corpus)
        trial(args, True, net, corpus)
    times: dict[str, list[float]] = {"timer": [], "causes": []}
    cpu: dict[str, list[float]] = {"timer": [], "causes": []}
    ratios, cpu_ratios = [], []
    for index in range(args.trials):
        order = [False, True] if index % 2 == 0 else [True, False]
        got = {causes: trial(args, causes, net, corpus) for causes in order}
        for mode, causes in (("timer", False), ("causes", True)):
            times[mode].append(got[causes][0])
            cpu[mode].append(got[causes][1])
        ratios.append(got[True][0] / got[False][0] - 1)
        cpu_ratios.append(got[True][1] / got[False][1] - 1)
    medians = {m: round(statistics.median(t) * 1e3, 2) for m, t in cpu.items()}
    print(
        json.dumps(
            {
                "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
                "python": platform.python_version(),
                "torch": torch.__version__,
                "ms_per_step": {m: round(statistics.median(t) * 1e3, 2) for m, t in times.items()},
                "causes_overhead_percent": round(statistics.median(ratios) * 100, 2),
                "cpu_ms_per_step": medians,
                "causes_cpu_overhead_percent": round(statistics.median(cpu_ratios) * 100, 2),
                "marks_cpu_us_per_step": round(marks_cpu_us(), 2),
                "sampler_cpu_ms_per_reading": round(sampler_cpu_ms(), 3),
                "gpu_read": open_gpu_reader(os.environ, 0) is not None,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
