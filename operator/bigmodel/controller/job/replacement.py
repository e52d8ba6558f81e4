"""`spec.telemetry.stragglerPolicy: Replace` for jobs (pure): S after the latest replacement,
and the next replacement when one is due (`controller.straggler_policy` says which).

Besides the shared rules, a job replaces only while it is Running with every pod present and
running (not restarting, no pod leaving), and never while its `CommunicationSlow` condition
holds (a slow network slows every rank alike: moving one does not help). A non-elastic job
restarts its gang (from its checkpoint, as any restart) without counting a restart against
backoffLimit; an elastic job replaces the one pod. Every pod of the job avoids the machines
of its replacements from then on (`manifests.job.build_pod`).
"""

from __future__ import annotations

from bigmodel.api import ConditionStatus, ConditionType, JobPhase, PodPhase, Reason
from bigmodel.controller import straggler_policy
from bigmodel.controller.conditions import Event, find
from bigmodel.controller.job.plan import Step
from bigmodel.controller.straggler_policy import Placed


def _ready(step: Step) -> bool:
    """Whether the job may replace a pod now: Running with every pod present and running,
    no pod leaving, none deleted or created by this look, and no job-wide slowness."""
    status = step.status
    slow_network = find(status.conditions, ConditionType.COMMUNICATION_SLOW)
    return (
        status.phase is JobPhase.RUNNING
        and not (step.leaving or step.plan.delete or step.plan.create)
        and len(step.pods) == len(step.members)
        and all(p.phase == PodPhase.RUNNING for p in step.pods)
        and not (slow_network is not None and slow_network.status is ConditionStatus.TRUE)
    )


def act_on_stragglers(step: Step) -> None:
    """The policy's part of a look at a Running job: S after the latest replacement, then
    the next replacement when one is due (or a timer for when it will be)."""
    if step.status.phase is not JobPhase.RUNNING:
        return
    spec, status = step.spec.telemetry, step.status
    placed = {p.name: Placed(p.machine, p.created) for p in step.pods}
    members = sum(1 for m in step.members if step.roles[m.role].measured)
    replacements = status.straggler_replacements
    renewed = [replacements[-1].pod] if replacements else []  # its pod's name comes back
    event = straggler_policy.measured(
        replacements, placed, renewed, status.telemetry, spec, members
    )
    if event is not None:
        step.plan.events.append(event)
    if not straggler_policy.allowed(spec, replacements) or not _ready(step):
        return
    due = straggler_policy.due_straggler(spec, status.telemetry, placed, step.now)
    if due.detail is None:
        if due.wake_in is not None:
            step.wake(due.wake_in)
        return
    pod = next(p for p in step.pods if p.name == due.detail.name)
    assert pod.machine is not None
    done = straggler_policy.record(due.detail, pod.machine, status.telemetry, step.now)
    replacements.append(done)
    limit = spec.straggler_policy.max_replacements
    message = straggler_policy.replaced_message(done, due.detail.detail, len(replacements), limit)
    message += ", not counted against backoffLimit"
    if step.spec.elastic is None:  # the Restarting condition's change posts the event
        step.restart_gang(Reason.STRAGGLER_REPLACED, message)
    else:
        step.plan.events.append(Event("Warning", Reason.STRAGGLER_REPLACED, message))
        step.delete([pod])
