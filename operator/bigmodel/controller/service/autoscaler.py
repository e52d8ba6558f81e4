"""The autoscaler of a BigModelService as one pure function of the latest measurement and
the recent recommendations: `autoscale(policy, desired, load, loading, history, started, now)`.

- The metric's value comes from the replicas that reported it; a replica with no measurement
  is left out (never taken as zero or infinity). Replicas that answered but served nothing
  measure no load: S, latency, ttft and tpot then ask for the fewest replicas. ttft and tpot
  are each replica's percentile over the round, averaged as latency averages T_i.
- Recommendation: `ceil(ready x value / target)` (`ceil(ready x target / value)` for S, which
  grows with replicas), unchanged within a 10% tolerance, clamped to min..max.
- Stabilization as Kubernetes' HPA: scale up to the lowest recommendation of the up-window,
  down to the highest of the down-window (and only once this daemon has watched for a whole
  down-window). A scale up at most doubles the replicas (or adds 4), and none happens while
  replicas added earlier are still loading. Under constant load it never flaps: the
  recommendation depends on the total load, not on the replica count (a first scale-up may
  overshoot by a replica, when the metric has a part the load does not change, and is
  corrected once).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bigmodel.api import BigModelService, Reason
from bigmodel.api.service import TOKEN_METRICS, Autoscaling, ScalingMetric
from bigmodel.controller.service.replicas import ReplicaPod
from bigmodel.telemetry.observe import Observation
from bigmodel.telemetry.readings import MissingReason
from bigmodel.telemetry.serving import reading_of

TOLERANCE = 0.1
"""Relative distance from the target within which nothing changes."""
SCALE_UP_FACTOR = 2
SCALE_UP_PODS = 4
"""A scale up reaches at most max(desired x SCALE_UP_FACTOR, desired + SCALE_UP_PODS)."""
TOO_FEW = Reason.TOO_FEW_REPLICAS
TOO_MANY = Reason.TOO_MANY_REPLICAS


@dataclass(frozen=True)
class Load:
    """What one telemetry round measured of the replicas."""

    task_seconds: Sequence[float] = ()
    """T_i of each replica that served requests since the previous round."""
    idle: int = 0
    """Replicas that answered but served no request since the previous round."""
    in_flight: Sequence[float] = ()
    """Requests running plus waiting, of each replica that answered."""
    ready: int = 0
    """Replicas ready now."""
    ttft: Sequence[float] = ()
    """Time to first token at the policy's percentile, of each replica that produced a
    first token since the previous round (LLM services)."""
    tpot: Sequence[float] = ()
    """Time per output token at the policy's percentile, of each replica that finished a
    generation since the previous round (LLM services)."""


@dataclass(frozen=True)
class Recommendation:
    """What one round asked for (clamped to min..max), and when."""

    at: datetime
    replicas: int


@dataclass(frozen=True)
class ScaleDecision:
    """The autoscaler's outcome of one round."""

    desired: int
    """Replicas the service should have now."""
    value: float | None
    """The metric's value this round (None: not measured)."""
    recommended: int | None
    """This round's recommendation before clamping (None: not measured)."""
    limited: Reason | None = None
    """TOO_FEW or TOO_MANY when the recommendation was clamped to min or max."""
    history: tuple[Recommendation, ...] = field(default_factory=tuple)
    """Recommendations to pass to the next round."""
    why: str = ""
    """The measurement against the target, in words (for events and messages)."""


def metric_value(metric: ScalingMetric, load: Load) -> float | None:
    """The metric of `load`, or None when no replica measured it."""
    if metric is ScalingMetric.IN_FLIGHT:
        if not load.in_flight or load.ready <= 0:
            return None
        return sum(load.in_flight) / len(load.in_flight)
    if metric in TOKEN_METRICS:
        tokens = load.ttft if metric is ScalingMetric.TTFT else load.tpot
        if not tokens:
            return 0.0 if load.idle else None
        return sum(tokens) / len(tokens)
    if not load.task_seconds:
        return 0.0 if load.idle else None
    if metric is ScalingMetric.LATENCY:
        return sum(load.task_seconds) / len(load.task_seconds)
    return sum(1.0 / t for t in load.task_seconds) / len(load.task_seconds)


def recommend(metric: ScalingMetric, value: float, target: float, ready: int) -> int:
    """Replicas for `value` measured over `ready` replicas to meet `target`."""
    if metric is ScalingMetric.SERVICE_QUALITY:
        if value <= 0:  # no request at all: no quality to keep up
            return 0
        ratio = target / value
    else:
        ratio = value / target
    if abs(ratio - 1.0) <= TOLERANCE:
        return ready
    return math.ceil(ready * ratio - 1e-9)


def describe(
    metric: ScalingMetric, value: float, target: float, percentile: float | None = None
) -> str:
    """`in flight 11.5 per replica > target 8`, `latency 2.31s < target 3s`,
    `p90 TTFT 0.612s > target 0.5s`, ..."""
    sign = ">" if value > target else "<" if value < target else "="
    if metric in TOKEN_METRICS:
        return f"p{percentile:g} {metric.value.upper()} {value:.3g}s {sign} target {target:g}s"
    if metric is ScalingMetric.IN_FLIGHT:
        return f"in flight {value:.3g} per replica {sign} target {target:g}"
    if metric is ScalingMetric.LATENCY:
        return f"latency {value:.3g}s {sign} target {target:g}s"
    return f"S {value:.3g}/s {sign} target {target:g}/s"


def _window(history: Sequence[Recommendation], now: datetime, seconds: int) -> list[int]:
    since = now - timedelta(seconds=seconds)
    return [r.replicas for r in history if r.at >= since]


def autoscale(
    policy: Autoscaling,
    desired: int,
    load: Load,
    loading: int,
    history: Sequence[Recommendation],
    started: datetime,
    now: datetime,
) -> ScaleDecision:
    """The replicas to have after this round. `desired`: the current decision; `loading`:
    replicas of the current spec that exist but are not ready yet; `started`: when this
    daemon began watching (it needs a whole down-window of history to scale down)."""
    low, high = policy.min_replicas, policy.max_replicas
    desired = min(max(desired, low), high)
    keep = max(policy.scale_up_stabilization_seconds, policy.scale_down_stabilization_seconds)
    history = tuple(r for r in history if r.at >= now - timedelta(seconds=keep))
    value = metric_value(policy.metric, load)
    if value is None or load.ready <= 0:
        return ScaleDecision(desired, value, None, history=history)
    raw = recommend(policy.metric, value, policy.target, load.ready)
    limited = TOO_FEW if raw < low else TOO_MANY if raw > high else None
    history = (*history, Recommendation(now, min(max(raw, low), high)))
    up = min(_window(history, now, policy.scale_up_stabilization_seconds))
    down = max(_window(history, now, policy.scale_down_stabilization_seconds))
    why = describe(policy.metric, value, policy.target, policy.effective_percentile)
    new = desired
    if up > desired and loading == 0:
        new = min(up, max(desired * SCALE_UP_FACTOR, desired + SCALE_UP_PODS))
    elif down < desired and now - started >= timedelta(
        seconds=policy.scale_down_stabilization_seconds
    ):
        new = down
    return ScaleDecision(new, value, raw, limited, history, why)


def load_of(obs: Observation | None, pods: Sequence[ReplicaPod], service: BigModelService) -> Load:
    """What a telemetry round measured of the ready replicas."""
    ready = {p.name for p in pods if p.ready and not p.deleting}
    if obs is None:
        return Load(ready=len(ready))
    reading = reading_of(service.spec.runtime)
    scrapes = [s for key, s in obs.scrapes.items() if key in ready]
    valid = obs.summary.relative_speed
    flights = [reading.in_flight(s) for s in scrapes if s.reason is None or s.raw]
    tokens = obs.tokens
    return Load(
        task_seconds=[s.value for s in scrapes if s.value is not None and s.target.key in valid],
        idle=sum(1 for s in scrapes if s.reason is MissingReason.IDLE),
        in_flight=[f for f in flights if f is not None],
        ready=len(ready),
        ttft=[v for key, v in tokens.ttft.items() if key in ready] if tokens else (),
        tpot=[v for key, v in tokens.tpot.items() if key in ready] if tokens else (),
    )


def next_decision(
    rules: Autoscaling,
    desired: int,
    load: Load,
    history: Sequence[Recommendation],
    started: datetime,
    now: datetime,
    last_scale: datetime | None,
) -> tuple[ScaleDecision, datetime | None]:
    """The autoscaler's decision after a round that measured `load` (replicas wanted but not
    ready yet count as loading), and when the desired replicas last changed."""
    loading = max(0, desired - load.ready)
    decision = autoscale(rules, desired, load, loading, history, started, now)
    return decision, (now if decision.desired != desired else last_scale)
