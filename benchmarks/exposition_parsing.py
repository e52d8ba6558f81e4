"""Reading T_i from one node page: the operator's own line reader (`telemetry.textformat.
read_series`) against prometheus_client's parser (`text_string_to_metric_families`), on the
same page in the same run. The page is the runtime's `render()` of 8 local ranks with a loss
(what `telemetry_collection.py` serves from every simulated node).

    .venv/bin/python benchmarks/exposition_parsing.py
"""

from __future__ import annotations

import argparse
import platform
import timeit
from dataclasses import replace

from prometheus_client.parser import text_string_to_metric_families

from bigmodel.runtime.exposition import NODE_STEP_SECONDS, render
from bigmodel.runtime.stats import RankStats, observe
from bigmodel.telemetry.textformat import Series, read_series


def node_page(ranks: int) -> str:
    """A node's page: `ranks` local ranks, each with two steps timed and a loss."""
    stats = {r: replace(observe(observe(RankStats(), 0.01 * (r + 1)), 0.02), loss=1.5)
             for r in range(ranks)}  # fmt: skip
    return render(stats)


def by_families(page: str) -> float | None:
    """T_i as prometheus_client's parser gives it: every line parsed into families."""
    for family in text_string_to_metric_families(page):
        for sample in family.samples:
            if sample.name == NODE_STEP_SECONDS and not sample.labels:
                return float(sample.value)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ranks", type=int, default=8, help="local ranks on the page")
    parser.add_argument("--number", type=int, default=2000, help="parses per timing")
    args = parser.parse_args()
    page = node_page(args.ranks)
    wanted = [Series(NODE_STEP_SECONDS)]
    assert read_series(page, wanted)[wanted[0]] == by_families(page)
    ours = min(timeit.repeat(lambda: read_series(page, wanted), number=args.number, repeat=5))
    theirs = min(timeit.repeat(lambda: by_families(page), number=args.number, repeat=5))
    print(f"page: {len(page)} bytes, {args.ranks} ranks; Python {platform.python_version()}")
    print(f"read_series (ours):          {ours / args.number * 1e6:8.1f} us/page")
    print(f"prometheus_client's parser:  {theirs / args.number * 1e6:8.1f} us/page")
    print(f"ratio (theirs / ours):       {theirs / ours:8.1f}x")


if __name__ == "__main__":
    main()
