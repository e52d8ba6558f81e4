"""Example Spark application: a word count split over the cluster's executors.

`python -m bigmodel.runtime.example_spark` joins the cluster that `PYSPARK_SUBMIT_ARGS`
names (the operator sets it on the driver pod; `spark-submit --master $SPARK_MASTER_URL`
works as well), counts the words of a seeded synthetic corpus of LINES lines in PARTITIONS
partitions (one task each), and prints one JSON line with the most frequent words, the
total and the executors that took part.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Iterator, Sequence
from operator import add

VOCABULARY = (
    "split", "execute", "collect", "combine", "task", "node", "worker", "result", "data",
    "model", "train", "serve", "scale", "shard", "batch", "step", "time", "mean", "sum",
)  # fmt: skip


def lines(partition: int, count: int, seed: int) -> Iterator[str]:
    """The `count` lines of one partition, the same on every run with the same seed."""
    rng = random.Random(seed * 1_000_003 + partition)
    for _ in range(count):
        yield " ".join(rng.choice(VOCABULARY) for _ in range(12))


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bigmodel.runtime.example_spark")
    parser.add_argument("--lines", type=int, default=200_000, help="lines of the corpus")
    parser.add_argument("--partitions", type=int, default=16, help="tasks per stage")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    from pyspark.sql import SparkSession

    began = time.monotonic()
    session = SparkSession.builder.appName("bigmodel-wordcount").getOrCreate()
    try:
        context = session.sparkContext
        per_partition = args.lines // args.partitions
        corpus = context.parallelize(range(args.partitions), args.partitions).flatMap(
            lambda p: lines(p, per_partition, args.seed)
        )
        counts = corpus.flatMap(str.split).map(lambda w: (w, 1)).reduceByKey(add).cache()
        top = counts.takeOrdered(5, key=lambda pair: -pair[1])
        total = counts.values().sum()
        # Block managers known to the driver, minus its own: the executors.
        executors = context._jsc.sc().getExecutorMemoryStatus().size() - 1
    finally:
        session.stop()
    print(
        json.dumps(
            {
                "top": dict(top),
                "words": total,
                "executors": executors,
                "seconds": round(time.monotonic() - began, 3),
            }
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
