"""A worker's task time for engines whose unit of work is a task (Dask, Spark): how many
tasks it computed and their compute seconds, and the `/metrics` page that says it.

Stdlib-only. The page carries one summary, `bigmodel_worker_task_seconds` (`_sum`: compute
seconds of every finished task, `_count`: finished tasks), both counters from the worker's
start. The operator reads T_i as delta(sum) / delta(count) between two scrapes: the mean
seconds the worker spent computing one task in the latest window.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

TASK_SECONDS = "bigmodel_worker_task_seconds"
TASK_SECONDS_SUM = f"{TASK_SECONDS}_sum"
TASK_SECONDS_COUNT = f"{TASK_SECONDS}_count"


@dataclass(frozen=True)
class TaskTotals:
    """Tasks finished and their compute seconds, since the worker started."""

    tasks: int = 0
    seconds: float = 0.0


class TaskTally:
    """Running totals, added to from the engine's threads and read by the metrics server."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals = TaskTotals()

    def add(self, seconds: float) -> None:
        """Count one finished task that computed for `seconds`."""
        with self._lock:
            self._totals = TaskTotals(self._totals.tasks + 1, self._totals.seconds + seconds)

    def totals(self) -> TaskTotals:
        with self._lock:
            return self._totals


def render(totals: TaskTotals) -> str:
    """Prometheus text exposition of one worker's task totals."""
    return (
        f"# HELP {TASK_SECONDS} Compute seconds of the tasks this worker finished.\n"
        f"# TYPE {TASK_SECONDS} summary\n"
        f"{TASK_SECONDS_SUM} {float(totals.seconds)!r}\n"
        f"{TASK_SECONDS_COUNT} {totals.tasks}\n"
    )
