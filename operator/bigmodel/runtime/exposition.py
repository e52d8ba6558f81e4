"""The pod's `/metrics` contract: metric names and the Prometheus text rendering.

Stdlib-only: the operator, the chart's rules and the tests share these names. One pod (one
node) exposes, aggregated over its local ranks:

- `bigmodel_node_step_seconds` (gauge): the node's T_i, the slowest local rank's latest step.
- `bigmodel_node_step_seconds_ewma` (gauge): the slowest local rank's moving average.
- `bigmodel_steps_total` (counter): steps timed by the most advanced local rank.
- `bigmodel_step_seconds` (histogram): every local rank's step times, fixed buckets
  (`_count` is steps x local ranks).
- `bigmodel_local_rank_step_seconds{local_rank}` (gauge): each local rank's latest step.
- `bigmodel_training_loss` (gauge): mean of the local ranks' latest loss, when set.

The parts of a step (moving averages, of the local rank with the slowest moving average):
`bigmodel_node_input_wait_seconds` and `bigmodel_node_compute_seconds` (they add up to
its step), and `bigmodel_node_communication_seconds` (exposed communication after the
step: the least over the local ranks, as the last rank to arrive waits only for the wire).
The machine sampler's figures over its window (`bigmodel_node_machine_*`, see
`MACHINE_SERIES`): fractions and rates, the worst local rank's (the lowest SM clock, every
throttle reason seen, the faults of all).

Gauges without data are left out (never reported as zero).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping

from bigmodel.runtime.machine import MachineSample
from bigmodel.runtime.stats import BUCKETS, RankStats, node_step_seconds, reporting

NODE_STEP_SECONDS = "bigmodel_node_step_seconds"
NODE_STEP_SECONDS_EWMA = "bigmodel_node_step_seconds_ewma"
STEPS_TOTAL = "bigmodel_steps_total"
STEP_SECONDS = "bigmodel_step_seconds"
LOCAL_RANK_STEP_SECONDS = "bigmodel_local_rank_step_seconds"
TRAINING_LOSS = "bigmodel_training_loss"
NODE_INPUT_WAIT_SECONDS = "bigmodel_node_input_wait_seconds"
NODE_COMPUTE_SECONDS = "bigmodel_node_compute_seconds"
NODE_COMMUNICATION_SECONDS = "bigmodel_node_communication_seconds"
MACHINE_SERIES: Mapping[str, tuple[str, str]] = {
    "sched_delay": ("max", "Share of runnable time the threads waited for a CPU."),
    "cpu_throttled": ("max", "Share of wall time the cgroup was CPU-throttled."),
    "major_faults_per_second": ("sum", "Major page faults per second."),
    "swap_pages_per_second": ("max", "Pages swapped in and out per second (host)."),
    "memory_pressure": ("max", "Share of wall time some task stalled on memory (PSI)."),
    "gpu_sm_clock_mhz": ("min", "Mean SM clock of the GPU (MHz)."),
    "gpu_throttled": ("max", "Share of time the GPU was throttled."),
    "gpu_throttle_reasons": ("or", "Clock-event (throttle) reasons seen, NVML's bitmask."),
    "gpu_pcie_degraded": ("max", "1 when the PCIe link runs below its maximum width."),
    "gpu_xid_errors": ("sum", "XID errors new in the window."),
}
"""Per `MachineSample` figure: how local ranks combine, and its help. Each is exported as
`bigmodel_node_machine_<figure>`; the GPU ones only where a GPU was read."""
METRIC_NAMES: tuple[str, ...] = (
    NODE_STEP_SECONDS,
    NODE_STEP_SECONDS_EWMA,
    STEPS_TOTAL,
    STEP_SECONDS,
    LOCAL_RANK_STEP_SECONDS,
    TRAINING_LOSS,
    NODE_INPUT_WAIT_SECONDS,
    NODE_COMPUTE_SECONDS,
    NODE_COMMUNICATION_SECONDS,
    *(f"bigmodel_node_machine_{figure}" for figure in MACHINE_SERIES),
)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _family(name: str, kind: str, help_text: str) -> Iterator[str]:
    yield f"# HELP {name} {help_text}"
    yield f"# TYPE {name} {kind}"


def _histogram(ranks: Mapping[int, RankStats]) -> Iterator[str]:
    yield from _family(STEP_SECONDS, "histogram", "Step times of every local rank.")
    cumulative = 0
    for index, bound in enumerate((*BUCKETS, math.inf)):
        cumulative += sum(s.buckets[index] for s in ranks.values())
        yield f'{STEP_SECONDS}_bucket{{le="{_number(bound)}"}} {cumulative}'
    yield f"{STEP_SECONDS}_sum {_number(sum(s.total for s in ranks.values()))}"
    yield f"{STEP_SECONDS}_count {cumulative}"


def _lines(ranks: Mapping[int, RankStats]) -> Iterator[str]:
    timed = reporting(ranks)
    latest = node_step_seconds(ranks)
    if latest is not None:
        yield from _family(NODE_STEP_SECONDS, "gauge", "Slowest local rank's latest step (T_i).")
        yield f"{NODE_STEP_SECONDS} {_number(latest)}"
        yield from _family(NODE_STEP_SECONDS_EWMA, "gauge", "Slowest local rank's moving average.")
        yield f"{NODE_STEP_SECONDS_EWMA} {_number(max(s.ewma for s in timed.values()))}"
    yield from _family(STEPS_TOTAL, "counter", "Steps timed by the most advanced local rank.")
    yield f"{STEPS_TOTAL} {max((s.steps for s in ranks.values()), default=0)}"
    yield from _histogram(ranks)
    if timed:
        yield from _family(LOCAL_RANK_STEP_SECONDS, "gauge", "Each local rank's latest step.")
        for rank, stats in sorted(timed.items()):
            yield f'{LOCAL_RANK_STEP_SECONDS}{{local_rank="{rank}"}} {_number(stats.last)}'
    losses = [s.loss for s in ranks.values() if s.loss is not None]
    if losses:
        yield from _family(TRAINING_LOSS, "gauge", "Mean of the local ranks' latest loss.")
        yield f"{TRAINING_LOSS} {_number(sum(losses) / len(losses))}"
    if timed:
        yield from _parts(timed)
    yield from _machine(ranks)


def _parts(timed: Mapping[int, RankStats]) -> Iterator[str]:
    slowest = max(timed.values(), key=lambda s: s.ewma)
    yield from _family(NODE_INPUT_WAIT_SECONDS, "gauge", "Input wait within a step (average).")
    yield f"{NODE_INPUT_WAIT_SECONDS} {_number(slowest.input_ewma)}"
    yield from _family(NODE_COMPUTE_SECONDS, "gauge", "Compute within a step (average).")
    yield f"{NODE_COMPUTE_SECONDS} {_number(slowest.compute_ewma)}"
    communicated = [s.communication_ewma for s in timed.values() if s.communication_steps]
    if communicated:
        help_text = "Exposed communication after a step (average)."
        yield from _family(NODE_COMMUNICATION_SECONDS, "gauge", help_text)
        yield f"{NODE_COMMUNICATION_SECONDS} {_number(min(communicated))}"


def _combine(how: str, values: list[float]) -> float:
    if how == "or":
        bits = 0
        for value in values:
            bits |= int(value)
        return float(bits)
    if how == "sum":
        return sum(values)
    return min(values) if how == "min" else max(values)


def _machine(ranks: Mapping[int, RankStats]) -> Iterator[str]:
    samples = [s.machine for s in ranks.values() if s.machine.samples]
    gpus = [m for m in samples if m.gpu_sm_clock_mhz > 0]
    for figure, (how, help_text) in MACHINE_SERIES.items():
        read: list[MachineSample] = gpus if figure.startswith("gpu_") else samples
        if read:
            name = f"bigmodel_node_machine_{figure}"
            yield from _family(name, "gauge", help_text)
            yield f"{name} {_number(_combine(how, [float(getattr(m, figure)) for m in read]))}"


def render(ranks: Mapping[int, RankStats]) -> str:
    """Prometheus text exposition of one node, from its local ranks' statistics."""
    return "\n".join(_lines(ranks)) + "\n"
