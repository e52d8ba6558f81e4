"""The restart half of `scale.py`, with N jobs Running:

- restart: a fresh operator started in place of the one that ran them (stopped with
  SIGTERM): the seconds from starting its process until it is ready (/readyz: caches
  synced), until it has looked at every job (`bigmodel_reconciles_total{kind="BigModelJob"}`
  >= N: a first look per job, nothing else changes them), and its CPU share of one core and
  RSS over that time.
- takeover: a standby started beside the leader that ran them (ready: its caches synced),
  then the leader SIGKILLed: the seconds from the kill until the standby leads
  (`bigmodel_operator_leader` 1: the lease expired) and until it has looked at every job,
  and its CPU share of one core from leading to that."""

from __future__ import annotations

import os
import signal
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubesandbox.testing import RunningSandbox
from scale_support import RunningOperator, cpu_seconds, operator, rss_mb

RECONCILES = 'bigmodel_reconciles_total{kind="BigModelJob"}'
LEADER = "bigmodel_operator_leader"
TIMEOUT = 900.0


def sample(port: int, series: str) -> float:
    """The operator's value of `series` (a metric name with its labels), 0 when absent."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        for line in answer.read().decode().splitlines():
            if line.startswith(series + " "):
                return float(line.split()[-1])
    return 0.0


def job_reconciles(port: int) -> float:
    """The operator's count of BigModelJob reconcile passes so far."""
    return sample(port, RECONCILES)


def _until(reached: Callable[[], bool], what: str) -> float:
    """Wait until `reached()`; the monotonic time it was seen."""
    deadline = time.monotonic() + TIMEOUT
    while not reached():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} after {TIMEOUT:g} s")
        time.sleep(0.2)
    return time.monotonic()


def restarted(sandbox: RunningSandbox, jobs: int, log: Path) -> dict[str, Any]:
    """Start a fresh operator over the `jobs` Running jobs and time its catching up."""
    with operator(sandbox, log) as running:
        port = running.metrics_port
        looked = _until(lambda: job_reconciles(port) >= jobs, f"fewer than {jobs} jobs looked at")
        looked -= running.started
        cpu = cpu_seconds(running.pid)
        return {
            "ready_seconds": running.ready_seconds,
            "looked_seconds": looked,
            "cpu_share": cpu / looked,
            "rss_mb": rss_mb(running.pid),
        }


def taken_over(
    sandbox: RunningSandbox, jobs: int, leader: RunningOperator, log: Path
) -> dict[str, Any]:
    """Start a standby beside `leader`, SIGKILL the leader once the standby is ready, and
    time the standby's taking over the `jobs` Running jobs."""
    with operator(sandbox, log) as standby:
        port = standby.metrics_port
        before = job_reconciles(port)
        rss_standby = rss_mb(standby.pid)
        killed = time.monotonic()
        os.kill(leader.pid, signal.SIGKILL)
        leading = _until(lambda: sample(port, LEADER) == 1, "the standby does not lead")
        cpu = cpu_seconds(standby.pid)
        looked = _until(
            lambda: job_reconciles(port) - before >= jobs, f"fewer than {jobs} jobs looked at"
        )
        return {
            "standby_ready_seconds": standby.ready_seconds,
            "standby_rss_mb": rss_standby,
            "standby_reconciles": before,
            "leading_seconds": leading - killed,
            "looked_seconds": looked - killed,
            "looked_after_leading_seconds": looked - leading,
            "cpu_share": (cpu_seconds(standby.pid) - cpu) / max(looked - leading, 1e-3),
            "rss_mb": rss_mb(standby.pid),
        }
