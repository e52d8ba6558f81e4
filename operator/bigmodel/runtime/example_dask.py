"""Example Dask client: a dask.array aggregation split over the cluster's workers.

`python -m bigmodel.runtime.example_dask` connects to `DASK_SCHEDULER_ADDRESS` (the
operator sets it on the client pod, as dask-kubernetes does), builds a seeded random
SIZE x SIZE array in CHUNK x CHUNK blocks (one task per block and step), computes the mean
of each column of `x + x.T` and their sum, and prints one JSON line with the result, the
tasks and the workers that ran them.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bigmodel.runtime.example_dask")
    parser.add_argument("--size", type=int, default=4000, help="rows and columns of the array")
    parser.add_argument("--chunk", type=int, default=500, help="rows and columns of a block")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    import dask.array as da
    from distributed import Client, get_task_stream

    began = time.monotonic()
    with Client() as client, get_task_stream(client) as stream:
        x = da.random.RandomState(args.seed).random_sample(
            (args.size, args.size), chunks=(args.chunk, args.chunk)
        )
        total = float((x + x.T).mean(axis=0).sum().compute())
    workers = sorted({task["worker"] for task in stream.data})
    print(
        json.dumps(
            {
                "result": total,
                "tasks": len(stream.data),
                "workers": len(workers),
                "seconds": round(time.monotonic() - began, 3),
            }
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
