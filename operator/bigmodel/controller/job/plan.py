"""One look at a job, under construction: the plan the daemon applies (status, events, pod
deletions and creations) and the helpers every lifecycle step uses (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType

from bigmodel.api import (
    BigModelJob,
    BigModelJobStatus,
    ConditionType,
    JobPhase,
    PodPhase,
    Reason,
)
from bigmodel.api.job import NodeCounts
from bigmodel.controller.conditions import Event, StatusStep, find
from bigmodel.controller.job.pods import NodePod
from bigmodel.controller.job.timing import Timing
from bigmodel.manifests.frameworks import Member, contract_of


@dataclass(frozen=True)
class Problem:
    """Why a job cannot start: a condition reason and a message that names the field."""

    reason: Reason
    message: str


@dataclass
class Plan:
    """What to do now: the new status and the changes to the node pods."""

    status: BigModelJobStatus
    create: list[Member] = field(default_factory=list)
    """Members whose pods (and the Services, PodGroup) to create if absent."""
    delete: list[NodePod] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    delete_job: bool = False
    """The TTL after finishing has passed."""
    wake_in: float | None = None
    """Seconds until a timer (back-off, deadline, TTL, grace) is due."""


class Step(StatusStep[BigModelJobStatus]):
    """The plan under construction for one look at a job."""

    def __init__(
        self,
        job: BigModelJob,
        pods: Sequence[NodePod],
        now: datetime,
        timing: Timing,
        reasons: Mapping[Member, str] = MappingProxyType({}),
    ) -> None:
        super().__init__(job.status, job.metadata.get("generation"), now)
        self.job, self.spec, self.timing, self.reasons = job, job.spec, timing, reasons
        self.contract = contract_of(job.spec.framework)
        self.roles = {r.name: r for r in self.contract.roles(job.spec)}
        self.members = self.contract.members(job.spec)
        """Every pod the job has when complete, role by role."""
        self.pods = [p for p in pods if not p.leaving]
        self.leaving = [p for p in pods if p.leaving]
        self.status.nodes = counts(self.pods)
        self.plan = Plan(status=self.status)

    def left(self, type_: ConditionType, seconds: float) -> float:
        """Seconds left until `seconds` after the condition's last transition (now if absent)."""
        found = find(self.status.conditions, type_)
        since = found.last_transition_time if found else self.now
        return (since + timedelta(seconds=seconds) - self.now).total_seconds()

    def wake(self, seconds: float) -> None:
        """Look again in `seconds` at the latest."""
        current = self.plan.wake_in
        self.plan.wake_in = seconds if current is None else min(current, seconds)

    def delete(self, pods: Sequence[NodePod]) -> None:
        self.plan.delete += [p for p in pods if p not in self.plan.delete]

    def restart_gang(self, reason: Reason, message: str) -> None:
        """Phase Restarting: every node pod deleted, recreated once they are gone and the
        back-off has passed (whoever counts the restart)."""
        self.status.phase = JobPhase.RESTARTING
        self.condition(ConditionType.RUNNING, False, Reason.RESTARTING, message)
        self.condition(ConditionType.RESTARTING, True, reason, message)
        self.delete(self.pods)


def counts(pods: Sequence[NodePod]) -> NodeCounts:
    """Node pods by phase (Unknown counts as failed)."""
    phases = [p.phase for p in pods]
    return NodeCounts(
        pending=phases.count(PodPhase.PENDING),
        running=phases.count(PodPhase.RUNNING),
        succeeded=phases.count(PodPhase.SUCCEEDED),
        failed=phases.count(PodPhase.FAILED) + phases.count(PodPhase.UNKNOWN),
    )
