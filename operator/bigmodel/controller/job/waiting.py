"""Why a job's node pods wait, as conditions (pure), so that a job says what holds it:

- `PodsUnschedulable`: True (reason `Unschedulable`) while node pods cannot be placed on a
  node, naming them and quoting the scheduler's message; its lastTransitionTime says since
  when. False (`PodsScheduled`) once none waits for a node.
- `PodsFailingToStart`: True (reason `ContainersCannotStart`) while the kubelet cannot start
  a node pod's container (`ErrImagePull`, `ImagePullBackOff`, `InvalidImageName`,
  `CreateContainerConfigError`, `CreateContainerError`), quoting its reason and message.
  False (`ContainersStarting`) once none is stuck so.

A condition appears the first time it is True and then stays, False when cleared; the job's
decisions post a Warning event when either turns True, and a Normal one when it clears.
"""

from __future__ import annotations

from collections.abc import Sequence

from bigmodel.api import ConditionType, Reason
from bigmodel.controller.conditions import find
from bigmodel.controller.job.plan import Step
from bigmodel.controller.podstatus import quote_pods


def _report(
    step: Step,
    type_: ConditionType,
    named: Sequence[tuple[str, str]],
    why: tuple[Reason, str],
    cleared: tuple[Reason, str],
) -> None:
    if named:
        reason, lead = why
        message = f"{len(named)} of {len(step.members)} node pods {lead}: {quote_pods(named)}"
        step.condition(type_, True, reason, message)
    elif find(step.status.conditions, type_) is not None:
        step.condition(type_, False, *cleared)


def report_waiting(step: Step) -> None:
    """Set PodsUnschedulable and PodsFailingToStart from the node pods of this look."""
    _report(
        step,
        ConditionType.PODS_UNSCHEDULABLE,
        [(p.name, p.unschedulable) for p in step.pods if p.unschedulable],
        (Reason.UNSCHEDULABLE, "cannot be scheduled"),
        (Reason.PODS_SCHEDULED, "no node pod waits for a node"),
    )
    _report(
        step,
        ConditionType.PODS_FAILING_TO_START,
        [(p.name, p.start_failure) for p in step.pods if p.start_failure],
        (Reason.CONTAINERS_CANNOT_START, "cannot start their containers"),
        (Reason.CONTAINERS_STARTING, "no node pod fails to start its containers"),
    )
