"""Dask worker preload: T_i where Dask records it, with no change to the user's program.

`dask worker --preload bigmodel.runtime.dask_tasks` adds a worker plugin that, when a task
finishes (in memory or erred), counts the `compute` start/stop the worker recorded for it:
the same record the worker sends to the scheduler, which Dask's task stream and dashboard
show. The totals are served at `/metrics` (`bigmodel.runtime.tasks`) on
`BIGMODEL_METRICS_HOST:BIGMODEL_METRICS_PORT`, from the worker's start to its close.
"""

from __future__ import annotations

import os
from typing import Any

from distributed import Worker, WorkerPlugin

from bigmodel.runtime.environment import read_environment
from bigmodel.runtime.server import MetricsServer
from bigmodel.runtime.tasks import TaskTally, render

PLUGIN_NAME = "bigmodel-task-seconds"
_RUNNING = frozenset({"executing", "long-running"})
_FINISHED = frozenset({"memory", "error"})


class TaskSeconds(WorkerPlugin):
    """Counts each finished task's compute seconds and serves the totals while installed."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.tally = TaskTally()
        self._worker: Worker | None = None
        self._server: MetricsServer | None = None

    def setup(self, worker: Worker) -> None:
        self._worker = worker
        self._server = MetricsServer(self.host, self.port, lambda: render(self.tally.totals()))

    def teardown(self, worker: Worker) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    def transition(self, key: Any, start: str, finish: str, **kwargs: Any) -> None:
        if start not in _RUNNING or finish not in _FINISHED or self._worker is None:
            return
        task = self._worker.state.tasks.get(key)
        computed = [s for s in task.startstops if s["action"] == "compute"] if task else []
        if computed:
            self.tally.add(computed[-1]["stop"] - computed[-1]["start"])


async def dask_setup(worker: Worker) -> None:
    """Dask's preload hook: install the plugin on this worker."""
    env = read_environment(os.environ)
    await worker.plugin_add(TaskSeconds(env.metrics_host, env.metrics_port), name=PLUGIN_NAME)
