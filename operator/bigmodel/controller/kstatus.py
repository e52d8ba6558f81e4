"""The kstatus summary of both kinds (pure): the `Ready`, `Reconciling` and `Stalled`
conditions that Flux (through kstatus), `kubectl wait` and the chart's Argo CD health checks
read, each with observedGeneration.

Each kind's `decide()` adds them last, from the status it has just computed, so they never
disagree with the phase and the conditions they summarize; they post no events (the
condition they summarize already did). kstatus reads a resource as InProgress while
`Reconciling` is True or `status.observedGeneration` lags `metadata.generation`, Failed while
`Stalled` is True, and Current otherwise, so at most one of the two is True.

- BigModelJob: Ready while Running or Succeeded; Reconciling while Pending, Restarting or
  (elastic) below minNodes; Stalled when Failed, or when its node pods could not be
  scheduled for longer than `UNSCHEDULABLE_GRACE` before it started. Suspended is none of
  the three: the job is as its spec asks.
- BigModelService: Ready is the service controller's own condition (every desired replica
  ready on the current spec), kept as it is; Reconciling while Pending or Progressing
  (creating, rolling out, scaling); Stalled when Failed (Invalid, ModelLoadFailed,
  ProgressDeadlineExceeded).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bigmodel.api import (
    BigModelJobStatus,
    BigModelServiceStatus,
    Condition,
    ConditionStatus,
    ConditionType,
    JobPhase,
    Reason,
    ServicePhase,
)
from bigmodel.controller.conditions import find, set_condition

UNSCHEDULABLE_GRACE = timedelta(minutes=10)
"""How long a job's node pods may wait for a node before the job is Stalled: long enough for
a cluster autoscaler to add a GPU node."""
KSTATUS = (ConditionType.READY, ConditionType.RECONCILING, ConditionType.STALLED)


@dataclass(frozen=True)
class Summary:
    """A resource's state as kstatus sees it; the three conditions share its reason and
    message (those of the condition it summarizes)."""

    ready: bool
    reconciling: bool
    stalled: bool
    reason: str
    message: str


def _true(conditions: Sequence[Condition], type_: ConditionType) -> Condition | None:
    found = find(conditions, type_)
    return found if found is not None and found.status is ConditionStatus.TRUE else None


def _of(
    conditions: Sequence[Condition],
    type_: ConditionType,
    ready: bool = False,
    reconciling: bool = False,
    stalled: bool = False,
) -> Summary:
    """The summary quoting condition `type_` (its type and no message when it is absent)."""
    found = find(conditions, type_)
    reason, message = (found.reason, found.message) if found else (type_.value, "")
    return Summary(ready, reconciling, stalled, reason, message)


def _job_waiting(status: BigModelJobStatus, now: datetime, grace: timedelta) -> Summary:
    """A job that has not started: Reconciling, or Stalled once its pods have been
    unschedulable for longer than `grace`."""
    stuck = _true(status.conditions, ConditionType.PODS_UNSCHEDULABLE)
    if stuck is None:
        nodes = status.nodes
        message = f"waiting for node pods to run: {nodes.running} running, {nodes.pending} pending"
        return Summary(False, True, False, Reason.NODES_PENDING, message)
    if now - stuck.last_transition_time < grace:
        return Summary(False, True, False, stuck.reason, stuck.message)
    minutes = f"{grace.total_seconds() / 60:g} min"
    message = f"node pods unschedulable for more than {minutes}: {stuck.message}"
    return Summary(False, False, True, stuck.reason, message)


def job_summary(
    status: BigModelJobStatus, now: datetime, grace: timedelta = UNSCHEDULABLE_GRACE
) -> Summary:
    """What a job's status means to kstatus (see the module docstring)."""
    conditions = status.conditions
    match status.phase:
        case JobPhase.SUCCEEDED:
            return _of(conditions, ConditionType.SUCCEEDED, ready=True)
        case JobPhase.FAILED:
            return _of(conditions, ConditionType.FAILED, stalled=True)
        case JobPhase.SUSPENDED:
            return _of(conditions, ConditionType.SUSPENDED)
        case JobPhase.RESTARTING:
            return _of(conditions, ConditionType.RESTARTING, reconciling=True)
        case JobPhase.RUNNING if _true(conditions, ConditionType.DEGRADED):
            return _of(conditions, ConditionType.DEGRADED, reconciling=True)
        case JobPhase.RUNNING:
            return _of(conditions, ConditionType.RUNNING, ready=True)
        case _:
            return _job_waiting(status, now, grace)


def service_summary(status: BigModelServiceStatus) -> Summary:
    """What a service's status means to kstatus (see the module docstring)."""
    conditions = status.conditions
    match status.phase:
        case ServicePhase.READY:
            return _of(conditions, ConditionType.READY, ready=True)
        case ServicePhase.FAILED:
            return _of(conditions, ConditionType.READY, stalled=True)
        case _:
            return _of(conditions, ConditionType.PROGRESSING, reconciling=True)


def _with(
    conditions: list[Condition],
    summary: Summary,
    types: Sequence[ConditionType],
    generation: int | None,
    now: datetime,
) -> list[Condition]:
    """`conditions` with each of `types` set from `summary`."""
    value = {
        ConditionType.READY: summary.ready,
        ConditionType.RECONCILING: summary.reconciling,
        ConditionType.STALLED: summary.stalled,
    }
    for type_ in types:
        conditions = set_condition(
            conditions, type_, value[type_], summary.reason, summary.message, generation, now
        )
    return conditions


def job_kstatus(
    status: BigModelJobStatus, generation: int | None, now: datetime
) -> list[Condition]:
    """The job's conditions with Ready, Reconciling and Stalled set from its status."""
    return _with(status.conditions, job_summary(status, now), KSTATUS, generation, now)


def service_kstatus(
    status: BigModelServiceStatus, generation: int | None, now: datetime
) -> list[Condition]:
    """The service's conditions with Reconciling and Stalled set from its status (Ready is
    the service controller's own and stays as it set it)."""
    summary = service_summary(status)
    return _with(status.conditions, summary, KSTATUS[1:], generation, now)
