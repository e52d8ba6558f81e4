"""Spark worker pod wrapper: T_i where Spark records it, with no change to the application.

`python -m bigmodel.runtime.spark_tasks --driver-ui URL --executor-host HOST -- spark-class
org.apache.spark.deploy.worker.Worker ...` runs the worker as its child (exiting with its
code, passing SIGTERM on) and serves `/metrics` (`bigmodel.runtime.tasks`) on
`BIGMODEL_METRICS_HOST:BIGMODEL_METRICS_PORT`. Each scrape reads the driver's monitoring
REST API (`/api/v1/applications/<app>/allexecutors`) and adds up, over the executors this
worker hosts (`hostPort` on HOST), `completedTasks + failedTasks` and `totalDuration`: the
figures Spark's UI shows per executor. While no application answers, the page has no
sample (the operator reports the node as missing, never as zero).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from bigmodel.runtime.environment import read_environment
from bigmodel.runtime.server import MetricsServer
from bigmodel.runtime.tasks import TaskTotals, render

REST_TIMEOUT_SECONDS = 1.0
"""Per request to the driver: the operator's scrape gives up after 2 s."""


def executor_totals(executors: Iterable[Mapping[str, Any]], host: str) -> TaskTotals:
    """Tasks and task seconds of the executors on `host`, from the REST API's executor
    summaries (`totalDuration` is in milliseconds; the driver's own entry is left out)."""
    tasks, milliseconds = 0, 0
    for executor in executors:
        if executor["id"] != "driver" and executor["hostPort"].rsplit(":", 1)[0] == host:
            tasks += executor["completedTasks"] + executor["failedTasks"]
            milliseconds += executor["totalDuration"]
    return TaskTotals(tasks, milliseconds / 1000)


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=REST_TIMEOUT_SECONDS) as reply:
        return json.load(reply)


def read_totals(driver_ui: str, host: str) -> TaskTotals | None:
    """This worker's totals over the driver's applications, None while none answers."""
    api = f"{driver_ui.rstrip('/')}/api/v1/applications"
    try:
        apps = _get(api)
        executors = [e for app in apps for e in _get(f"{api}/{app['id']}/allexecutors")]
    except (OSError, ValueError):
        return None
    return executor_totals(executors, host) if apps else None


def page(driver_ui: str, host: str) -> str:
    """The worker's `/metrics` page, read from the driver now."""
    totals = read_totals(driver_ui, host)
    return (
        render(totals) if totals is not None else f"# no Spark application answers at {driver_ui}\n"
    )


def _arguments(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bigmodel.runtime.spark_tasks")
    parser.add_argument("--driver-ui", required=True, help="the driver's UI, http://HOST:PORT")
    parser.add_argument("--executor-host", required=True, help="the host this worker serves on")
    parser.add_argument("command", nargs="+", help="the Spark worker's command, after --")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the worker command with the task page served beside it; its exit code."""
    args = _arguments(sys.argv[1:] if argv is None else argv)
    env = read_environment(os.environ)
    server = MetricsServer(
        env.metrics_host, env.metrics_port, lambda: page(args.driver_ui, args.executor_host)
    )
    worker = subprocess.Popen(args.command)
    signal.signal(signal.SIGTERM, lambda *_: worker.terminate())
    try:
        return worker.wait()
    finally:
        server.close()


if __name__ == "__main__":
    sys.exit(main())
