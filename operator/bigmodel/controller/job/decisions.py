"""The BigModelJob lifecycle as one pure function: `decide(job, pods, now) -> Plan`.

The daemon of each job calls it with the node pods it observes and applies the plan: status,
events, pod deletions and creations. Everything it needs survives an operator restart: the
phase, restart count and condition times are in `status`, the rest is in the pods.

- Non-elastic: any failed, evicted or deleted node restarts the whole gang (a lone new worker
  cannot rejoin a running torchrun group), after a back-off doubling from
  `Timing.restart_backoff`.
- Elastic: a failed node pod is replaced in place; below `minNodes` running for longer than
  `Timing.elastic_grace`, the gang restarts.
- Every restart and replacement counts against `runPolicy.backoffLimit`, except a
  straggler's replacement by `spec.telemetry.stragglerPolicy` (`replacement`).
- The job's framework (`manifests.frameworks`) names its pods by role and index, and says
  which roles decide: success when every pod of a deciding role succeeded (pytorch: node
  0, whose torchrun agent hosts the rendezvous; tensorflow: every worker), none of the pods
  whose failure counts failed, and no pod of a role the job waits for runs; the pods of
  roles stopped then (parameter servers) are deleted. A node failing after node 0
  succeeded restarts the gang as any failure does (a checkpointed trainer then finishes at
  once); a pod of an elastic job that never got to run does not hold success back. A
  failure of a role that does not decide (an evaluator) changes nothing.
- Node pods that wait for a node, or whose containers the kubelet cannot start, are named
  in the conditions PodsUnschedulable and PodsFailingToStart (`waiting`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from types import MappingProxyType

from bigmodel.api import (
    BigModelJob,
    CleanPodPolicy,
    ConditionType,
    JobPhase,
    PodPhase,
    Reason,
    RestartPolicy,
)
from bigmodel.controller.conditions import Event, find, transitions, true_of
from bigmodel.controller.job.plan import Plan, Problem, Step
from bigmodel.controller.job.pods import NodePod
from bigmodel.controller.job.replacement import act_on_stragglers
from bigmodel.controller.job.timing import Timing
from bigmodel.controller.job.waiting import report_waiting
from bigmodel.controller.kstatus import job_kstatus
from bigmodel.manifests.frameworks import Member, OnFailure, WhenDone
from bigmodel.manifests.job import POD_GROUP_API, spec_errors

TERMINAL = (JobPhase.SUCCEEDED, JobPhase.FAILED)
SIGNAL_EXIT = 128
"""Exit codes from 128 up mean the process was killed by a signal: retryable."""
WARNING_CONDITIONS = (
    ConditionType.FAILED,
    ConditionType.RESTARTING,
    ConditionType.DEGRADED,
    ConditionType.PODS_UNSCHEDULABLE,
    ConditionType.PODS_FAILING_TO_START,
)
QUIET_WHEN_FALSE = (ConditionType.RUNNING, ConditionType.DEGRADED)
DELETED = "Deleted"
"""The disruption of a node pod deleted while its gang ran."""


def retryable(pod: NodePod, policy: RestartPolicy, codes: Sequence[int]) -> bool:
    """Whether a failed node may restart: a disruption always; an exit per restartPolicy
    (ExitCode: signals, 128 and up, and `retryableExitCodes`)."""
    if pod.disruption is not None:
        return True
    if policy is RestartPolicy.NEVER:
        return False
    if policy is RestartPolicy.EXIT_CODE and pod.exit_code is not None:
        return pod.exit_code >= SIGNAL_EXIT or pod.exit_code in codes
    return True


def describe(pod: NodePod) -> str:
    """What happened to a node pod, in a few words."""
    if pod.disruption == DELETED:
        return f"{pod.name} was deleted"
    if pod.disruption is not None:
        return f"{pod.name} was stopped by the cluster ({pod.disruption})"
    if pod.exit_code is not None:
        return f"{pod.name} exited with code {pod.exit_code}"
    return f"{pod.name} failed"


def _finish(step: Step, succeeded: bool, reason: Reason, message: str) -> None:
    """Move to Succeeded or Failed for good."""
    phase = JobPhase.SUCCEEDED if succeeded else JobPhase.FAILED
    step.status.phase = phase
    step.status.completion_time = step.now
    step.condition(ConditionType.RUNNING, False, reason, message)
    step.condition(ConditionType(phase.value), True, reason, message)
    _finished(step)


def _finished(step: Step) -> None:
    """A finished job: clean its pods per cleanPodPolicy (running ones always after a
    deadline) and delete it once its TTL has passed."""
    policy = step.spec.run_policy
    stopped = find(step.status.conditions, ConditionType.FAILED)
    deadline = stopped is not None and stopped.reason == Reason.DEADLINE_EXCEEDED
    if policy.clean_pod_policy is CleanPodPolicy.ALL:
        step.delete(step.pods)
    elif policy.clean_pod_policy is CleanPodPolicy.RUNNING or deadline:
        step.delete([p for p in step.pods if p.active])
    ttl = policy.ttl_seconds_after_finished
    if ttl is not None:
        done = step.status.completion_time or step.now
        left = (done + timedelta(seconds=ttl) - step.now).total_seconds()
        step.plan.delete_job = left <= 0
        step.wake(max(left, 0))


def _suspend(step: Step) -> None:
    """Delete the pods and keep the job; the deadline clock starts again on resume."""
    step.status.phase = JobPhase.SUSPENDED
    step.status.start_time = None
    step.condition(ConditionType.RUNNING, False, Reason.SUSPENDED, "the job is suspended")
    step.condition(
        ConditionType.SUSPENDED,
        True,
        Reason.SUSPENDED,
        "runPolicy.suspend is true: node pods deleted",
    )
    step.delete(step.pods)


def _restart(step: Step, why: str) -> None:
    """Start a gang restart (all node pods deleted), or fail when backoffLimit is reached."""
    limit = step.spec.run_policy.backoff_limit
    if step.status.restarts >= limit:
        _finish(step, False, Reason.BACKOFF_LIMIT_EXCEEDED, f"{why}; backoffLimit {limit} reached")
        return
    step.status.restarts += 1
    delay = step.timing.backoff(step.status.restarts)
    step.restart_gang(
        Reason.GANG_RESTART, f"{why}; restart {step.status.restarts} of {limit} in {delay:g}s"
    )


def _restarting(step: Step, cluster: Sequence[Problem]) -> None:
    """Wait until the old gang is gone and the back-off has passed, then start again."""
    step.delete(step.pods)
    if step.pods or step.leaving:
        return
    left = step.left(ConditionType.RESTARTING, step.timing.backoff(step.status.restarts))
    if left > 0:
        step.wake(left)
        return
    restarting = find(step.status.conditions, ConditionType.RESTARTING)
    moved = restarting is not None and restarting.reason == Reason.STRAGGLER_REPLACED
    which = "straggler replaced" if moved else f"restart {step.status.restarts}"
    message = f"{which}: node pods recreated"
    step.condition(ConditionType.RESTARTING, False, Reason.GANG_RECREATED, message)
    step.status.phase = JobPhase.PENDING
    _active(step, cluster)


def _permanent(step: Step, failed: Sequence[NodePod]) -> bool:
    """Fail the job when a failure may not be retried; True when it failed."""
    run = step.spec.run_policy
    if all(retryable(p, run.restart_policy, run.retryable_exit_codes) for p in failed):
        return False
    reason = (
        Reason.NON_RETRYABLE_EXIT_CODE
        if run.restart_policy is RestartPolicy.EXIT_CODE
        else Reason.POD_FAILED
    )
    why = "; ".join(describe(p) for p in failed)
    _finish(step, False, reason, f"{why} (restartPolicy {run.restart_policy.value})")
    return True


def _replace(step: Step, failed: Sequence[NodePod]) -> bool:
    """Elastic: delete failed node pods so that they are recreated in place, each counted as
    a restart; True when the job failed instead."""
    limit = step.spec.run_policy.backoff_limit
    for pod in failed:
        if step.status.restarts >= limit:
            why = f"{describe(pod)}; backoffLimit {limit} reached"
            _finish(step, False, Reason.BACKOFF_LIMIT_EXCEEDED, why)
            return True
        step.status.restarts += 1
        step.delete([pod])
        message = f"{describe(pod)}; replaced (restart {step.status.restarts} of {limit})"
        step.plan.events.append(Event("Warning", Reason.NODE_REPLACED, message))
    return False


def _degraded(step: Step, running: int) -> None:
    """Elastic: below minNodes for longer than the grace period restarts the gang."""
    assert step.spec.elastic is not None
    minimum = step.spec.elastic.min_nodes
    if running >= minimum:
        step.condition(
            ConditionType.DEGRADED, False, Reason.ENOUGH_NODES, f"{running} nodes running"
        )
        return
    step.condition(
        ConditionType.DEGRADED,
        True,
        Reason.BELOW_MIN_NODES,
        f"{running} nodes running, min {minimum}",
    )
    left = step.left(ConditionType.DEGRADED, step.timing.elastic_grace)
    if left > 0:
        step.wake(left)
    else:
        step.condition(
            ConditionType.DEGRADED, False, Reason.GANG_RESTART, f"below minNodes {minimum}"
        )
        _restart(step, f"fewer than minNodes {minimum} running for {step.timing.elastic_grace:g}s")


def _start(step: Step, members: list[Member], cluster: Sequence[Problem]) -> None:
    """Create the pods of `members`, unless the spec or the cluster cannot run them."""
    problems = [Problem(Reason.INVALID, e) for e in spec_errors(step.job)] + list(cluster)
    if problems:
        reason = problems[0].reason
        why = "; ".join(p.message for p in problems if p.reason == reason)
        _finish(step, False, reason, why)
        return
    step.status.start_time = step.status.start_time or step.now
    step.condition(
        ConditionType.CREATED,
        True,
        Reason.PODS_CREATED,
        f"node pods of generation {step.generation}",
    )
    step.plan.create = members


def _when_done(step: Step, pod: NodePod) -> WhenDone:
    """What becomes of `pod` once the deciding pods are done (a pod of a role the job does
    not have is waited for: it is being deleted)."""
    role = step.roles.get(pod.member.role)
    return role.when_done if role else WhenDone.WAIT


def _succeeded(step: Step, by_member: Mapping[Member, NodePod]) -> str | None:
    """Why the job has succeeded, or None: every pod of a deciding role succeeded and no pod
    of a role the job waits for still runs (see the framework's roles)."""
    deciding = [m for m in step.members if step.roles[m.role].decides]
    done = [by_member[m] for m in deciding if m in by_member]
    if len(done) < len(deciding) or any(p.phase != PodPhase.SUCCEEDED for p in done):
        return None
    if any(p.phase == PodPhase.RUNNING and _when_done(step, p) is WhenDone.WAIT for p in step.pods):
        return None
    which = done[0].name if len(done) == 1 else f"all {len(done)} deciding pods"
    return f"{which} succeeded, {step.status.nodes.succeeded} of {len(step.members)} pods succeeded"


def _active(step: Step, cluster: Sequence[Problem]) -> None:
    """Pending or Running: finish, handle failures, create missing pods, track progress."""
    spec, status, roles = step.spec, step.status, step.roles
    if status.phase is JobPhase.SUSPENDED:
        step.condition(ConditionType.SUSPENDED, False, Reason.RESUMED, "runPolicy.suspend is false")
    if status.phase in (None, JobPhase.SUSPENDED):
        status.phase = JobPhase.PENDING
    wanted = set(step.members)
    by_member = {p.member: p for p in step.pods if p.member in wanted}
    step.delete([p for p in step.pods if p.member not in wanted])  # an elastic job scaled down
    counted = [
        p for p in by_member.values() if roles[p.member.role].on_failure is OnFailure.RESTART
    ]
    failed = [p for p in counted if p.failed]
    success = None if failed else _succeeded(step, by_member)
    if success is not None:
        step.delete([p for p in step.pods if p.active and _when_done(step, p) is WhenDone.STOP])
        _finish(step, True, Reason.NODES_SUCCEEDED, success)
        return
    blocked = {p.member for p in step.leaving}
    missing = [m for m in step.members if m not in by_member and m not in blocked]
    if spec.elastic is None and status.phase is JobPhase.RUNNING:
        absent = blocked.union(missing) - by_member.keys()
        lost = [
            m for m in step.members if m in absent and roles[m.role].on_failure is OnFailure.RESTART
        ]
        failed += [NodePod(step.contract.pod_name(step.job, m), "", m, PodPhase.FAILED,
                           disruption=step.reasons.get(m, DELETED)) for m in lost]  # fmt: skip
        missing = [m for m in missing if roles[m.role].on_failure is not OnFailure.RESTART]
    if failed and _permanent(step, failed):
        return
    if failed and spec.elastic is None:
        _restart(step, "; ".join(describe(p) for p in failed))
        return
    if failed and _replace(step, failed):
        return
    if missing:
        _start(step, missing, cluster)
    running = status.nodes.running
    need = spec.elastic.min_nodes if spec.elastic else len(step.members)
    if status.phase is JobPhase.PENDING and running >= need:
        status.phase = JobPhase.RUNNING
        step.condition(
            ConditionType.RUNNING,
            True,
            Reason.NODES_RUNNING,
            f"{running} of {len(step.members)} pods running",
        )
    if spec.elastic and status.phase is JobPhase.RUNNING:
        _degraded(step, running)


def _deadline(step: Step) -> bool:
    """Fail a started job past activeDeadlineSeconds; True when it failed."""
    seconds, started = step.spec.run_policy.active_deadline_seconds, step.status.start_time
    if seconds is None or started is None:
        return False
    left = (started + timedelta(seconds=seconds) - step.now).total_seconds()
    if left > 0:
        step.wake(left)
        return False
    _finish(step, False, Reason.DEADLINE_EXCEEDED, f"activeDeadlineSeconds {seconds} passed")
    return True


def _spec_applied(step: Step) -> None:
    """Report a spec change that waits for the next (re)start, and when it is applied."""
    if step.status.phase in TERMINAL or not step.pods or step.generation is None:
        return
    older = [p.generation for p in step.pods if p.generation < step.generation]
    if older:
        message = (f"generation {step.generation} takes effect at the next restart; "
                   f"node pods run generation {min(older)}")  # fmt: skip
        step.condition(ConditionType.SPEC_APPLIED, False, Reason.PENDING_RESTART, message)
    elif find(step.status.conditions, ConditionType.SPEC_APPLIED):
        step.condition(
            ConditionType.SPEC_APPLIED,
            True,
            Reason.APPLIED,
            f"node pods run generation {step.generation}",
        )


def decide(
    job: BigModelJob,
    pods: Sequence[NodePod],
    now: datetime,
    timing: Timing,
    cluster: Sequence[Problem] = (),
    reasons: Mapping[Member, str] = MappingProxyType({}),
) -> Plan:
    """The next step of a job given its observed pods; `cluster` lists what keeps the
    cluster from running it (checked only when pods are to be created); `reasons`: why the
    cluster stopped the last pod of a member that has none now (`departures`)."""
    step = Step(job, pods, now, timing, reasons)
    phase = step.status.phase
    if phase in TERMINAL:
        _finished(step)
    elif step.spec.run_policy.suspend:
        _suspend(step)
    elif phase is not JobPhase.SUSPENDED and _deadline(step):
        pass
    elif phase is JobPhase.RESTARTING:
        _restarting(step, cluster)
    else:
        _active(step, cluster)
        act_on_stragglers(step)
    report_waiting(step)
    _spec_applied(step)
    changes = transitions(
        job.status.conditions, step.status.conditions, true_of(WARNING_CONDITIONS), QUIET_WHEN_FALSE
    )
    step.plan.events = changes + step.plan.events
    step.status.conditions = job_kstatus(step.status, step.generation, now)
    return step.plan


def cluster_problems(
    job: BigModelJob, largest_gpus: int, pod_group_served: bool | None
) -> list[Problem]:
    """What keeps the cluster from ever running the job: more GPUs per node than any node
    has (ignored while no node has GPUs, as an autoscaler may add them), or a gang
    scheduler whose PodGroup API is not served (`pod_group_served` None: no gang)."""
    problems = []
    gpus = job.spec.gpus_per_node
    if 0 < largest_gpus < gpus:
        message = f"spec.gpusPerNode: {gpus} GPUs, but the largest node has {largest_gpus}"
        problems.append(Problem(Reason.INVALID, message))
    gang = job.spec.gang_scheduling
    if gang is not None and pod_group_served is False:
        message = (f"spec.gangScheduling.scheduler: {gang.scheduler.value} is not installed "
                   f"(the PodGroup API {POD_GROUP_API[gang.scheduler]} is not served)")  # fmt: skip
        problems.append(Problem(Reason.GANG_SCHEDULER_UNAVAILABLE, message))
    return problems
