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

Gauges without data are left out (never reported as zero).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping

from bigmodel.runtime.stats import BUCKETS, RankStats, node_step_seconds, reporting

NODE_STEP_SECONDS = "bigmodel_node_step_seconds"
NODE_STEP_SECONDS_EWMA = "bigmodel_node_step_seconds_ewma"
STEPS_TOTAL = "bigmodel_steps_total"
STEP_SECONDS = "bigmodel_step_seconds"
LOCAL_RANK_STEP_SECONDS = "bigmodel_local_rank_step_seconds"
TRAINING_LOSS = "bigmodel_training_loss"
METRIC_NAMES: tuple[str, ...] = (
    NODE_STEP_SECONDS,
    NODE_STEP_SECONDS_EWMA,
    STEPS_TOTAL,
    STEP_SECONDS,
    LOCAL_RANK_STEP_SECONDS,
    TRAINING_LOSS,
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


def render(ranks: Mapping[int, RankStats]) -> str:
    """Prometheus text exposition of one node, from its local ranks' statistics."""
    return "\n".join(_lines(ranks)) + "\n"
