"""T_i -> T, S and stragglers: the pure arithmetic of the seed article's task time and quality.

For the nodes that answered (n of them) with a valid T_i (finite, > 0 seconds):
`T = sum T_i`, `S = (1/n) sum 1/T_i`, and each node's relative speed `r_i = min_j T_j / T_i`
(1 for the fastest). A node without a value is missing, one with a bad value is invalid:
both are reported by name and never counted as zero. A straggler is a node whose r_i stayed
below the job's threshold for the last `window` observations; it clears after `window`
observations at or above it, so one slow step neither flags nor clears a node.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

DEFAULT_STRAGGLER_THRESHOLD = 0.75
DEFAULT_STRAGGLER_WINDOW = 3


@dataclass(frozen=True)
class TaskTimeSummary:
    """T, S and the spread of T_i over the nodes that answered; None fields when n == 0."""

    n: int
    total: float | None  # T
    quality: float | None  # S
    minimum: float | None
    median: float | None
    maximum: float | None
    slowest: str | None
    relative_speed: Mapping[str, float]  # r_i, for the n answering nodes
    missing: tuple[str, ...] = ()
    invalid: tuple[str, ...] = ()


def _valid(seconds: float) -> bool:
    return math.isfinite(seconds) and seconds > 0


def summarize(times: Mapping[str, float | None]) -> TaskTimeSummary:
    """Summarize node -> T_i (None: the node did not answer)."""
    missing = tuple(sorted(node for node, t in times.items() if t is None))
    invalid = tuple(sorted(node for node, t in times.items() if t is not None and not _valid(t)))
    valid = {node: t for node, t in times.items() if t is not None and _valid(t)}
    if not valid:
        empty: Mapping[str, float] = MappingProxyType({})
        return TaskTimeSummary(0, None, None, None, None, None, None, empty, missing, invalid)
    fastest = min(valid.values())
    return TaskTimeSummary(
        n=len(valid),
        total=math.fsum(valid.values()),
        quality=math.fsum(1.0 / t for t in valid.values()) / len(valid),
        minimum=fastest,
        median=statistics.median(valid.values()),
        maximum=max(valid.values()),
        slowest=max(sorted(valid), key=lambda node: valid[node]),
        relative_speed=MappingProxyType({node: fastest / t for node, t in valid.items()}),
        missing=missing,
        invalid=invalid,
    )


@dataclass(frozen=True)
class StragglerPolicy:
    """A node is a straggler after `window` observations with r_i < `threshold` in a row."""

    threshold: float = DEFAULT_STRAGGLER_THRESHOLD
    window: int = DEFAULT_STRAGGLER_WINDOW

    def __post_init__(self) -> None:
        if not 0 < self.threshold <= 1:
            raise ValueError(f"straggler threshold {self.threshold} must be in (0, 1]")
        if self.window < 1:
            raise ValueError(f"straggler window {self.window} must be >= 1")


@dataclass(frozen=True)
class StragglerState:
    """Per node, its latest r_i (at most `window` of them) and whether it is flagged."""

    recent: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    flagged: frozenset[str] = frozenset()


def update_stragglers(
    state: StragglerState, summary: TaskTimeSummary, policy: StragglerPolicy
) -> StragglerState:
    """Fold one observation in. Missing or invalid nodes keep their history and flag; nodes
    absent from the observation altogether (gone from the job) are forgotten."""
    recent: dict[str, tuple[float, ...]] = {}
    flagged: set[str] = set()
    for node in (*summary.relative_speed, *summary.missing, *summary.invalid):
        history = state.recent.get(node, ())
        if node in summary.relative_speed:
            history = (*history, summary.relative_speed[node])
        recent[node] = history = history[-policy.window :]
        full = len(history) == policy.window
        slow = full and all(r < policy.threshold for r in history)
        recovered = full and all(r >= policy.threshold for r in history)
        if slow or (node in state.flagged and not recovered):
            flagged.add(node)
    return StragglerState(MappingProxyType(recent), frozenset(flagged))
