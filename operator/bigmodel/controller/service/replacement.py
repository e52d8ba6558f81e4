"""`spec.telemetry.stragglerPolicy: Replace` for services (pure): a replica whose request time
stands out (flagged as a straggler of the service) is moved off its machine
(`controller.straggler_policy` says which and when).

How the new replica avoids the machine: the Deployment's pod template gains a preferred node
anti-affinity to the machines of the service's replacements (`manifests.service`), and the
straggler's pod is deleted. Deleting the pod alone would not do: its ReplicaSet recreates it
from the same template, and the scheduler spreads pods onto the node with the fewest, most
likely the machine just freed. A taint would keep every other workload of the cluster off
the machine too. The cost: the changed template rolls every replica out once, under the
service's own `rollingUpdate`. Preferred, not required: a service must still run when its
other machines are full.

Guard rails besides the shared ones: the service is settled (its rollout complete, every
desired replica ready and of the current template), and deleting the replica leaves at least
the minimum ready (`autoscaling.minReplicas`, else 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from bigmodel.api import BigModelService, BigModelServiceStatus, Reason
from bigmodel.controller import straggler_policy
from bigmodel.controller.conditions import Event
from bigmodel.controller.service.replicas import ChildView, ReplicaPod
from bigmodel.controller.straggler_policy import Placed


@dataclass
class Replacement:
    """The policy's outcome for one look: events to post, the replica pod to delete."""

    events: list[Event] = field(default_factory=list)
    delete: list[ReplicaPod] = field(default_factory=list)


def minimum_ready(service: BigModelService) -> int:
    """The fewest ready replicas a replacement may leave: minReplicas, else 1."""
    rules = service.spec.autoscaling
    return rules.min_replicas if rules is not None else 1


def _settled(
    deployment: ChildView | None, pods: Sequence[ReplicaPod], desired: int, template: str
) -> bool:
    """Whether the rollout is complete: every desired replica ready, of the current template."""
    return (
        deployment is not None
        and deployment.settled
        and len(pods) == desired
        and all(p.ready and p.template == template for p in pods)
    )


def act_on_stragglers(
    service: BigModelService,
    status: BigModelServiceStatus,
    seen: tuple[ChildView | None, Sequence[ReplicaPod]],
    desired: int,
    template: str,
    now: datetime,
) -> Replacement:
    """S after the latest replacement, then the next replacement when one is due; records
    both in `status` (changed in place). `seen`: the Deployment and the replica pods;
    `template`: the hash of the current pod template."""
    deployment, seen_pods = seen
    spec, out = service.spec.telemetry, Replacement()
    pods = [p for p in seen_pods if not p.deleting]
    placed = {p.name: Placed(p.machine, p.created) for p in pods}
    replacements = status.straggler_replacements
    event = straggler_policy.measured(
        replacements, placed, list(placed), status.telemetry, spec, desired
    )  # a rollout renews every replica
    out.events += [event] if event is not None else []
    if not straggler_policy.allowed(spec, replacements):
        return out
    ready = sum(1 for p in pods if p.ready)
    if not _settled(deployment, pods, desired, template) or ready - 1 < minimum_ready(service):
        return out
    due = straggler_policy.due_straggler(spec, status.telemetry, placed, now)
    if due.detail is None:
        return out
    pod = next(p for p in pods if p.name == due.detail.name)
    assert pod.machine is not None
    done = straggler_policy.record(due.detail, pod.machine, status.telemetry, now)
    replacements.append(done)
    limit = spec.straggler_policy.max_replacements
    message = straggler_policy.replaced_message(done, due.detail.detail, len(replacements), limit)
    out.events.append(Event("Warning", Reason.STRAGGLER_REPLACED, message))
    out.delete.append(pod)
    return out
