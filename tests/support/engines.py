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
from bigmodel.telemetry.textformat import Series, read_series
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
SLOWDOWN = "BIGMODEL_TEST_SLOWDOWN"
"""Set on SLOW_WORKER's processes (its executors inherit it): its tasks sleep this many
times as long."""


def sleep_task(seconds: float) -> float:
    """A task that computes for `seconds`, times SLOWDOWN where the worker sets it."""
    time.sleep(seconds * float(os.environ.get(SLOWDOWN, "1")))
    return seconds


def worker_env(name: str, metrics_port: int) -> dict[str, str]:
    """A worker's environment: its page's address, and the slowdown on SLOW_WORKER."""
    slow = {SLOWDOWN: "2"} if name == SLOW_WORKER else {}
    return {
        **ENGINE_ENV,
        **slow,
        "BIGMODEL_METRICS_HOST": "127.0.0.1",
        "BIGMODEL_METRICS_PORT": str(metrics_port),
    }


def wait_for(condition: object, what: str, timeout: float = 120.0) -> None:
    """Poll `condition()` until it is true; fail naming `what` after a generous `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.2)


def task_totals(port: int) -> TaskTotals | None:
    """A worker's task totals read from its `/metrics` on 127.0.0.1:`port`, None while it
    gives none."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            page = reply.read().decode()
    except OSError:
        return None
    found = read_series(page, (Series(TASK_SECONDS_SUM), Series(TASK_SECONDS_COUNT)))
    if len(found) < 2:
        return None
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
                worker_env(name, metrics_port),
                logs / f"{name}.log",
            )  # fmt: skip
        yield DaskCluster(address, metrics)
    finally:
        processes.stop()


@dataclass(frozen=True)
class SparkCluster:
    """A standalone master and named workers, each worker on a loopback address of its own
    (`hosts[name]`, the executors' host) with its task page on port `metrics[name]`; the
    application's driver UI is to be started on `driver_ui_port`."""

    master: str
    driver_ui_port: int
    hosts: Mapping[str, str]
    metrics: Mapping[str, int]


@contextlib.contextmanager
def spark_cluster(
    logs: Path, workers: Sequence[str] = ("w0", "w1"), telemetry: bool = True
) -> Iterator[SparkCluster]:
    """`spark-class` master and workers (1 core each), every worker wrapped by the task-page
    exporter unless `telemetry` is False, as the Spark framework's pods run them."""
    port, driver_ui_port = free_port(), free_port()
    master = f"spark://127.0.0.1:{port}"
    hosts = {name: f"127.0.0.{index + 2}" for index, name in enumerate(workers)}
    metrics = {name: free_port() for name in workers}
    processes = Processes([])
    spark_class = str(BIN / "spark-class")
    try:
        processes.start(
            [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
             "--port", str(port), "--webui-port", str(free_port())],
            ENGINE_ENV, logs / "master.log",
        )  # fmt: skip
        for name in workers:
            worker = [spark_class, "org.apache.spark.deploy.worker.Worker", "--host", hosts[name],
                      "--cores", "1", "--memory", "1g", "--webui-port", "0",
                      "--work-dir", str(logs / name), master]  # fmt: skip
            exporter = [
                sys.executable, "-m", "bigmodel.runtime.spark_tasks",
                "--driver-ui", f"http://127.0.0.1:{driver_ui_port}",
                "--executor-host", hosts[name], "--",
            ]  # fmt: skip
            argv = [*exporter, *worker] if telemetry else worker
            processes.start(argv, worker_env(name, metrics[name]), logs / f"{name}.log")
        yield SparkCluster(master, driver_ui_port, hosts, metrics)
    finally:
        processes.stop()
