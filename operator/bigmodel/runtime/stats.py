"""One local rank's step statistics: counted in place per step, shared as a fixed-size record.

Pure and stdlib-only, so the operator can import it without torch. The record has a fixed
size whatever the number of steps (counter, latest, moving average, sum, fixed buckets), so
publishing and scraping it costs the same at step 10 and at step 10 million.

The parts of a step are moving averages like the step's own: input wait (from asking the
data loader to the batch being ready; compute is the rest of the step) and exposed
communication (after the step, the gradient all-reduce not hidden behind compute). The
machine sampler's latest figures (`machine.MachineSample`) ride in the same record.
"""

from __future__ import annotations

import bisect
import struct
import zlib
from collections.abc import Mapping
from dataclasses import astuple, dataclass, field, fields
from typing import Any

from bigmodel.runtime.machine import MachineSample

# Upper bounds (seconds) of the step-time histogram buckets; +Inf is implied after the last.
BUCKETS: tuple[float, ...] = (
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip
# Weight of the newest step in the exponentially weighted moving average.
EWMA_ALPHA = 0.1


def _empty_buckets() -> tuple[int, ...]:
    return (0,) * (len(BUCKETS) + 1)


@dataclass(frozen=True)
class RankStats:
    """Step statistics of one local rank; `buckets` are per-bucket (not cumulative) counts."""

    steps: int = 0
    last: float = 0.0
    ewma: float = 0.0
    total: float = 0.0
    buckets: tuple[int, ...] = field(default_factory=_empty_buckets)
    loss: float | None = None  # None: never set; NaN stays NaN (a diverged run)
    input_ewma: float = 0.0
    """Moving average of the input wait within a step (0 where the loop marks none)."""
    communication_ewma: float = 0.0
    """Moving average of the exposed communication after a step."""
    communication_steps: int = 0
    """Steps whose exposed communication was measured."""
    machine: MachineSample = field(default_factory=MachineSample)

    @property
    def compute_ewma(self) -> float:
        """Moving average of the step's compute: the step less its input wait."""
        return max(0.0, self.ewma - self.input_ewma)


class StepCounts:
    """One rank's statistics accumulated in place, for the per-step path of a timer: `add`
    allocates nothing but floats (a `RankStats` per step was most of the timer's cost);
    `snapshot` gives the immutable record to publish."""

    __slots__ = (
        "buckets", "communication_ewma", "communication_steps", "ewma", "input_ewma", "last",
        "loss", "machine", "steps", "total",
    )  # fmt: skip

    def __init__(self, stats: RankStats | None = None) -> None:
        stats = stats or RankStats()
        self.steps, self.last, self.ewma, self.total = (
            stats.steps, stats.last, stats.ewma, stats.total,
        )  # fmt: skip
        self.buckets = list(stats.buckets)
        self.loss = stats.loss
        self.input_ewma = stats.input_ewma
        self.communication_ewma = stats.communication_ewma
        self.communication_steps = stats.communication_steps
        self.machine = stats.machine

    def add(self, seconds: float, input_seconds: float = 0.0) -> None:
        """Count one more step of `seconds`, `input_seconds` of it waiting for input."""
        self.buckets[bisect.bisect_left(BUCKETS, seconds)] += (
            1  # a bucket holds values <= its bound
        )
        if self.steps == 0:
            self.ewma, self.input_ewma = seconds, input_seconds
        else:
            self.ewma += EWMA_ALPHA * (seconds - self.ewma)
            self.input_ewma += EWMA_ALPHA * (input_seconds - self.input_ewma)
        self.steps += 1
        self.last = seconds
        self.total += seconds

    def add_communication(self, seconds: float) -> None:
        """Count the exposed communication of one step."""
        first = self.communication_steps == 0
        self.communication_ewma = (
            seconds
            if first
            else self.communication_ewma + EWMA_ALPHA * (seconds - self.communication_ewma)
        )
        self.communication_steps += 1

    def snapshot(self) -> RankStats:
        """The statistics so far, as an immutable record."""
        return RankStats(
            self.steps,
            self.last,
            self.ewma,
            self.total,
            tuple(self.buckets),
            self.loss,
            self.input_ewma,
            self.communication_ewma,
            self.communication_steps,
            self.machine,
        )


def observe(stats: RankStats, seconds: float) -> RankStats:
    """Return `stats` with one more step of `seconds` counted."""
    counts = StepCounts(stats)
    counts.add(seconds)
    return counts.snapshot()


def reporting(ranks: Mapping[int, RankStats]) -> dict[int, RankStats]:
    """The ranks that have timed at least one step."""
    return {rank: stats for rank, stats in ranks.items() if stats.steps > 0}


def node_step_seconds(ranks: Mapping[int, RankStats]) -> float | None:
    """The node's T_i: the slowest local rank's latest step, None before any step."""
    timed = reporting(ranks)
    return max(s.last for s in timed.values()) if timed else None


_MAGIC = b"BMS2"
_MACHINE = "Q" + "d" * (len(fields(MachineSample)) - 1)  # samples, then the figures
_RECORD = struct.Struct(f"<4sQddd?d{len(BUCKETS) + 1}QddQ{_MACHINE}")
_CRC = struct.Struct("<I")
RECORD_SIZE = _RECORD.size + _CRC.size


def encode(stats: RankStats) -> bytes:
    """Serialize to a fixed-size record ending in a CRC, so a torn read is detected."""
    has_loss = stats.loss is not None
    loss = stats.loss if stats.loss is not None else 0.0
    payload = _RECORD.pack(
        _MAGIC,
        stats.steps,
        stats.last,
        stats.ewma,
        stats.total,
        has_loss,
        loss,
        *stats.buckets,
        stats.input_ewma,
        stats.communication_ewma,
        stats.communication_steps,
        *astuple(stats.machine),
    )
    return payload + _CRC.pack(zlib.crc32(payload))


def decode(record: bytes) -> RankStats | None:
    """Parse a record from `encode`; None when it is torn, truncated or of another layout."""
    if len(record) != RECORD_SIZE:
        return None
    payload, (crc,) = record[: _RECORD.size], _CRC.unpack(record[_RECORD.size :])
    if zlib.crc32(payload) != crc:
        return None
    magic, steps, last, ewma, total, has_loss, loss, *rest = _RECORD.unpack(payload)
    if magic != _MAGIC:
        return None
    buckets, rest = rest[: len(BUCKETS) + 1], rest[len(BUCKETS) + 1 :]
    input_ewma, communication_ewma, communication_steps, *machine = rest
    return RankStats(
        steps,
        last,
        ewma,
        total,
        tuple(buckets),
        loss if has_loss else None,
        input_ewma,
        communication_ewma,
        communication_steps,
        _machine(machine),
    )


def _machine(values: list[float]) -> MachineSample:
    """A `MachineSample` from its packed fields (all doubles but `samples`)."""
    kinds = {"int": int, "bool": bool, "float": float}
    unpacked: dict[str, Any] = {
        f.name: kinds[str(f.type)](value)
        for f, value in zip(fields(MachineSample), values, strict=True)
    }
    return MachineSample(**unpacked)
