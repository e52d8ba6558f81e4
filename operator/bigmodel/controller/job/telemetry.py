"""Telemetry of one BigModelJob: one round over its running node pods per interval.

The job controller runs the rounds on a queue of their own, only while the job is Running
(so a reconcile never waits for a scrape), and calls `forget()` when it stops.
"""

from __future__ import annotations

from collections.abc import Iterable

from bigmodel.api import BigModelJob, InvalidResourceError, PodPhase, parse_resource
from bigmodel.api.telemetry import StragglerAction
from bigmodel.controller.job.pods import NodePod
from bigmodel.controller.telemetry import TelemetryRounds
from bigmodel.manifests.frameworks import Measure, contract_of
from bigmodel.telemetry.collect import Target
from bigmodel.telemetry.observe import JOB_STEP_SECONDS, JOB_TASK_SECONDS, node_target
from bigmodel.telemetry.readings import Reading

READINGS: dict[Measure, Reading] = {
    Measure.STEPS: JOB_STEP_SECONDS,
    Measure.TASKS: JOB_TASK_SECONDS,
}
"""How T_i is read from a measured pod's page, by what it is the time of."""


def job_targets(job: BigModelJob, pods: Iterable[NodePod]) -> list[Target]:
    """One target per measured pod (keyed by its index: for pytorch the node rank, for
    tensorflow the worker index): Running, not leaving, with an IP. A pod that cannot
    be scraped yet is not part of the round."""
    spec = job.spec
    measured = {r.name for r in contract_of(spec.framework).roles(spec) if r.measured}
    live = {
        p.member.index: p
        for p in pods
        if p.member.role in measured and p.phase == PodPhase.RUNNING and not p.leaving and p.ip
    }
    port = spec.metrics.port
    return [node_target(index, p.name, p.ip or "", port) for index, p in sorted(live.items())]


def policy_pending(job: BigModelJob, flagged: bool) -> bool:
    """Whether the job's stragglerPolicy has something to look at after a round: a flagged
    straggler to replace, or S after its latest replacement to record."""
    if job.spec.telemetry.straggler_policy.action is not StragglerAction.REPLACE:
        return False
    replacements = job.status.straggler_replacements
    return flagged or bool(replacements and replacements[-1].service_quality_after is None)


async def job_round(rounds: TelemetryRounds, pods: Iterable[NodePod]) -> bool:
    """One round over the job's running node pods (call it while the job is Running);
    True when the job's straggler policy should look at its outcome."""
    try:
        job = parse_resource(BigModelJob, rounds.body)
    except InvalidResourceError:  # the job's reconcile reports it
        return False
    targets = job_targets(job, pods)
    reading = READINGS[contract_of(job.spec.framework).measure]
    obs = await rounds.safe_step(targets, job.spec.telemetry, reading)
    return obs is not None and policy_pending(job, bool(obs.state.stragglers.flagged))
