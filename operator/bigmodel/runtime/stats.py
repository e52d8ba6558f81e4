"""One local rank's step statistics: counted in place per step, shared as a fixed-size record.

Pure and stdlib-only, so the operator can import it without torch. The record has a fixed
size whatever the number of steps (counter, latest, moving average, sum, fixed buckets), so
publishing and scraping it costs the same at step 10 and at step 10 million.
"""

from __future__ import annotations

import bisect
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field

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


class StepCounts:
    """One rank's statistics accumulated in place, for the per-step path of a timer: `add`
    allocates nothing but floats (a `RankStats` per step was most of the timer's cost);
    `snapshot` gives the immutable record to publish."""

    __slots__ = ("buckets", "ewma", "last", "loss", "steps", "total")

    def __init__(self, stats: RankStats | None = None) -> None:
        stats = stats or RankStats()
        self.steps, self.last, self.ewma, self.total = (
            stats.steps, stats.last, stats.ewma, stats.total,
        )  # fmt: skip
        self.buckets = list(stats.buckets)
        self.loss = stats.loss

    def add(self, seconds: float) -> None:
        """Count one more step of `seconds`."""
        self.buckets[bisect.bisect_left(BUCKETS, seconds)] += (
            1  # a bucket holds values <= its bound
        )
        self.ewma = seconds if self.steps == 0 else self.ewma + EWMA_ALPHA * (seconds - self.ewma)
        self.steps += 1
        self.last = seconds
        self.total += seconds

    def snapshot(self) -> RankStats:
        """The statistics so far, as an immutable record."""
        return RankStats(
            self.steps, self.last, self.ewma, self.total, tuple(self.buckets), self.loss
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


_MAGIC = b"BMS1"
_RECORD = struct.Struct(f"<4sQddd?d{len(BUCKETS) + 1}Q")
_CRC = struct.Struct("<I")
RECORD_SIZE = _RECORD.size + _CRC.size


def encode(stats: RankStats) -> bytes:
    """Serialize to a fixed-size record ending in a CRC, so a torn read is detected."""
    has_loss = stats.loss is not None
    loss = stats.loss if stats.loss is not None else 0.0
    payload = _RECORD.pack(
        _MAGIC, stats.steps, stats.last, stats.ewma, stats.total, has_loss, loss, *stats.buckets
    )
    return payload + _CRC.pack(zlib.crc32(payload))


def decode(record: bytes) -> RankStats | None:
    """Parse a record from `encode`; None when it is torn, truncated or of another layout."""
    if len(record) != RECORD_SIZE:
        return None
    payload, (crc,) = record[: _RECORD.size], _CRC.unpack(record[_RECORD.size :])
    if zlib.crc32(payload) != crc:
        return None
    magic, steps, last, ewma, total, has_loss, loss, *buckets = _RECORD.unpack(payload)
    if magic != _MAGIC:
        return None
    return RankStats(steps, last, ewma, total, tuple(buckets), loss if has_loss else None)
