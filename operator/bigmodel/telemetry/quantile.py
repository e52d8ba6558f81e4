"""Percentiles of a Prometheus histogram between two scrapes, as PromQL computes
`histogram_quantile(q, increase(x_bucket[interval]))`: the cumulative bucket counts of each
scrape (by upper bound `le`), their increase (a reset counts from zero), and linear
interpolation inside the bucket where the rank falls."""

from __future__ import annotations

import math
from collections.abc import Mapping

from bigmodel.telemetry.textformat import Series

BUCKET_LABEL = "le"

Buckets = Mapping[float, float]
"""Cumulative observation counts by bucket upper bound (+Inf included)."""


def bucket_series(histogram: str) -> Series:
    """The selector of every bucket of `histogram`, one series per upper bound."""
    return Series(f"{histogram}_bucket", by=BUCKET_LABEL)


def buckets_of(raw: Mapping[Series, float], histogram: str) -> dict[float, float]:
    """The buckets of `histogram` among the series a scrape read (empty when absent); a
    bucket whose bound is not a number is left out."""
    name = f"{histogram}_bucket"
    found: dict[float, float] = {}
    for series, value in raw.items():
        if series.name != name or BUCKET_LABEL not in series.labels:
            continue
        try:
            bound = float(series.labels[BUCKET_LABEL])
        except ValueError:
            continue
        found[bound] = found.get(bound, 0.0) + value
    return found


def increase(current: Buckets, earlier: Buckets) -> dict[float, float]:
    """The observations of each bucket since `earlier`. When any bucket went down the
    process restarted and its current counts are the increase, as in PromQL's increase()."""
    if any(count < earlier.get(bound, 0.0) for bound, count in current.items()):
        return dict(current)
    return {bound: count - earlier.get(bound, 0.0) for bound, count in current.items()}


def histogram_quantile(q: float, buckets: Buckets) -> float | None:
    """The q-quantile (0 < q < 1) of cumulative `buckets`, as Prometheus estimates it:
    linear within the bucket holding the rank, the lowest bucket starting at 0, and the
    highest finite bound when the rank falls in the +Inf bucket. None without observations
    or without a +Inf bucket (not a histogram)."""
    bounds = sorted(buckets)
    if not bounds or bounds[-1] != math.inf:
        return None
    counts: list[float] = []
    for bound in bounds:  # counts must not decrease (a scrape racing an observation)
        counts.append(max(buckets[bound], counts[-1] if counts else 0.0))
    total = counts[-1]
    if total <= 0:
        return None
    rank = q * total
    index = next(i for i, count in enumerate(counts) if count >= rank)
    if index == len(bounds) - 1:
        return bounds[-2] if len(bounds) > 1 else None
    upper = bounds[index]
    if index == 0:
        return upper * rank / counts[0] if upper > 0 else upper
    lower, below = bounds[index - 1], counts[index - 1]
    return lower + (upper - lower) * (rank - below) / (counts[index] - below)
