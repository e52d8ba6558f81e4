"""Telemetry of one BigModelJob: one round over its running node pods per interval.

The job controller runs the rounds on a queue of their own, only while the job is Running
(so a reconcile never waits for a scrape), and calls `forget()` when it stops.
"""

from __future__ import annotations

from collections.abc import Iterable

from bigmodel.api import BigModelJob, InvalidResourceError, parse_resource
from bigmodel.controller.job.pods import RUNNING, NodePod
from bigmodel.controller.telemetry import TelemetryRounds
from bigmodel.telemetry.collect import Target
from bigmodel.telemetry.observe import JOB_STEP_SECONDS, node_target


def job_targets(pods: Iterable[NodePod], port: int) -> list[Target]:
    """One target per node rank: its Running pod (not being deleted) that has an IP. A pod
    that cannot be scraped yet is not part of the round."""
    live = {p.rank: p for p in pods if p.phase == RUNNING and not p.deleting and p.ip}
    return [node_target(rank, p.name, p.ip or "", port) for rank, p in sorted(live.items())]


async def job_round(rounds: TelemetryRounds, pods: Iterable[NodePod]) -> None:
    """One round over the job's running node pods (call it while the job is Running)."""
    try:
        job = parse_resource(BigModelJob, rounds.body)
    except InvalidResourceError:  # the job's reconcile reports it
        return
    targets = job_targets(pods, job.spec.metrics.port)
    await rounds.safe_step(targets, job.spec.telemetry, JOB_STEP_SECONDS)
