"""Dask and Spark started by hand on this host, as a pod would start them (the same commands
and preload), and the task-time pages their workers serve: shared by the engine tests and
the benchmarks."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bigmodel.runtime.tasks import TASK_SECONDS_COUNT, TASK_SECONDS_SUM, TaskTotals
from bigmodel.telemetry.collect import Series, read_series
from kubesandbox.testing import free_port

HAVE_DASK = importlib.util.find_spec("distributed") is not None
NO_DASK = "needs dask[distributed]: pip install -e '.[dask]'"
HAVE_SPARK = importlib.util.find_spec("pyspark") is not None and shutil.which("java") is not None
NO_SPARK = (
    "needs pyspark and a Java 17 runtime: pip install -e '.[spark]' and "
    "apt-get install openjdk-17-jre-headless"
)
BIN = Path(sys.executable).parent
ENGINE_ENV = {"PYTHONPATH": str(Path(__file__).parents[1])}
"""Lets the engine's processes import the tasks below (pickled by reference)."""
SLOW_WORKER = "w1"


def sleep_task(seconds: float) -> float:
    """A task that computes for `seconds`, twice as long on the worker named SLOW_WORKER."""
    from distributed import get_worker

    time.sleep(seconds * (2.0 if get_worker().name == SLOW_WORKER else 1.0))
    return seconds


def wait_for(condition: object, what: str, timeout: float = 120.0) -> None:
    """Poll `condition()` until it is true; fail naming `what` after a generous `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.2)


def task_totals(port: int) -> TaskTotals | None:
    """A worker's task totals read from its `/metrics` on 127.0.0.1:`port`, None if silent."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            page = reply.read().decode()
    except OSError:
        return None
    found = read_series(page, (Series(TASK_SECONDS_SUM), Series(TASK_SECONDS_COUNT)))
    return TaskTotals(int(found[Series(TASK_SECONDS_COUNT)]), found[Series(TASK_SECONDS_SUM)])


@dataclass
class Processes:
    """Processes started for one cluster, stopped in reverse order on exit."""

    started: list[subprocess.Popen[bytes]]

    def start(
        self, argv: Sequence[str], env: Mapping[str, str], log: Path
    ) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            process = subprocess.Popen(
                list(argv), env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT
            )
        self.started.append(process)
        return process

    def stop(self) -> None:
        for process in reversed(self.started):
            process.terminate()
        for process in reversed(self.started):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@dataclass(frozen=True)
class DaskCluster:
    """A scheduler and named workers on 127.0.0.1; `metrics[name]` is a worker's page port."""

    address: str
    metrics: Mapping[str, int]


@contextlib.contextmanager
def dask_cluster(
    logs: Path, workers: Sequence[str] = ("w0", "w1"), telemetry: bool = True
) -> Iterator[DaskCluster]:
    """`dask scheduler` and one `dask worker` per name (1 thread each, with the task-time
    preload unless `telemetry` is False), as the Dask framework's pods run them."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    processes = Processes([])
    metrics = {name: free_port() for name in workers}
    try:
        processes.start(
            [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
             "--no-dashboard"],
            ENGINE_ENV, logs / "scheduler.log",
        )  # fmt: skip
        preload = ["--preload", "bigmodel.runtime.dask_tasks"] if telemetry else []
        for name, metrics_port in metrics.items():
            processes.start(
                [str(BIN / "dask"), "worker", address, "--name", name, "--nthreads", "1",
                 "--no-dashboard", "--no-nanny", *preload],
                {**ENGINE_ENV, "BIGMODEL_METRICS_HOST": "127.0.0.1",
                 "BIGMODEL_METRICS_PORT": str(metrics_port)},
                logs / f"{name}.log",
            )  # fmt: skip
        yield DaskCluster(address, metrics)
    finally:
        processes.stop()
