"""The restart half of `scale.py`: with N jobs Running, a fresh operator started in place of
the one that ran them (stopped with SIGTERM): the seconds from starting its process until it
is ready (/readyz: caches synced), until it has looked at every job (`bigmodel_reconciles_total
{kind="BigModelJob"}` >= N: a first look per job, nothing else changes them), and its CPU
share of one core and RSS over that time."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path
from typing import Any

from kubesandbox.testing import RunningSandbox
from scale_support import cpu_seconds, operator, rss_mb

RECONCILES = 'bigmodel_reconciles_total{kind="BigModelJob"}'
TIMEOUT = 900.0


def job_reconciles(port: int) -> float:
    """The operator's count of BigModelJob reconcile passes so far."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        for line in answer.read().decode().splitlines():
            if line.startswith(RECONCILES):
                return float(line.split()[-1])
    return 0.0


def restarted(sandbox: RunningSandbox, jobs: int, log: Path) -> dict[str, Any]:
    """Start a fresh operator over the `jobs` Running jobs and time its catching up."""
    with operator(sandbox, log) as running:
        deadline = time.monotonic() + TIMEOUT
        while job_reconciles(running.metrics_port) < jobs:
            if time.monotonic() > deadline:
                raise TimeoutError(f"fewer than {jobs} jobs looked at after {TIMEOUT:g} s")
            time.sleep(0.2)
        looked = time.monotonic() - running.started
        cpu = cpu_seconds(running.pid)
        return {
            "ready_seconds": running.ready_seconds,
            "looked_seconds": looked,
            "cpu_share": cpu / looked,
            "rss_mb": rss_mb(running.pid),
        }
