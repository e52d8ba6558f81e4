"""Deliberate causes of slowness for the example trainer's `--inject`, so that users (and
tests) can watch the operator name them (docs/telemetry.md):

- `input-wait:RANK:SECONDS`: global rank RANK sleeps SECONDS in its data loading, each step;
- `compute:RANK:FACTOR`: rank RANK's compute takes about FACTOR times as long (extra
  forward passes of the same batch, without gradients);
- `communication:SECONDS:FROM_STEP`: every rank sleeps SECONDS before its last gradient
  bucket's all-reduce, from step FROM_STEP on (a slow network, after a normal start).

Pure and stdlib-only; the trainer applies them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

FORWARDS_PER_STEP = 3
"""A forward pass is about a third of a forward + backward: extra passes per unit of FACTOR."""


@dataclass(frozen=True)
class Injection:
    """One `--inject` value, parsed."""

    kind: str  # input-wait | compute | communication
    rank: int | None  # None: every rank
    amount: float  # seconds, or the compute factor
    from_step: int = 0

    def input_wait(self, rank: int) -> float:
        """Seconds rank `rank` sleeps in its data loading each step."""
        return self.amount if self.kind == "input-wait" and rank == self.rank else 0.0

    def extra_forwards(self, rank: int) -> int:
        """Extra forward passes rank `rank` makes each step."""
        if self.kind != "compute" or rank != self.rank:
            return 0
        return math.ceil(FORWARDS_PER_STEP * (self.amount - 1.0))

    def communication_delay(self, step: int) -> float:
        """Seconds every rank sleeps before its last all-reduce at step `step` (0-based)."""
        return self.amount if self.kind == "communication" and step >= self.from_step else 0.0


_FORMS = {
    "input-wait": "input-wait:RANK:SECONDS",
    "compute": "compute:RANK:FACTOR",
    "communication": "communication:SECONDS:FROM_STEP",
}


def parse_injection(text: str) -> Injection:
    """Parse `--inject`; a bad value raises ValueError naming the allowed forms."""
    kind, *fields = text.split(":")
    allowed = ", ".join(_FORMS.values())
    if kind not in _FORMS or len(fields) != 2:
        raise ValueError(f"--inject {text!r}: expected one of {allowed}")
    try:
        if kind == "communication":
            amount, first = float(fields[0]), int(fields[1])
            rank = None
        else:
            rank, amount, first = int(fields[0]), float(fields[1]), 0
    except ValueError:
        raise ValueError(f"--inject {text!r}: expected {_FORMS[kind]} with numbers") from None
    least = 1.0 if kind == "compute" else 0.0
    if not (math.isfinite(amount) and amount >= least) or (rank or 0) < 0 or first < 0:
        what = "FACTOR >= 1" if kind == "compute" else "SECONDS >= 0"
        raise ValueError(f"--inject {text!r}: {_FORMS[kind]} needs {what} and ranks/steps >= 0")
    return Injection(kind, rank, amount, first)
