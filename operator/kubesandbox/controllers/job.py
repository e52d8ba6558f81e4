"""The Job controller (batch/v1): pods run until `completions` of them succeed (in Indexed
mode, one per completion index), `parallelism` at a time; failures count against
`backoffLimit`, each replacement waits a doubling delay; `activeDeadlineSeconds`, `suspend`,
`ttlSecondsAfterFinished`; the status and conditions kube 1.33's controller writes
(SuccessCriteriaMet then Complete, FailureTarget then Failed once no pod is left running).
`decide` is pure; `JobController` carries it out.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from kubesandbox.access import ControllerAccess
from kubesandbox.controllers import jobindex
from kubesandbox.controllers.base import (
    Controller,
    controller_of,
    is_active,
    is_ready,
    owner_reference,
)
from kubesandbox.controllers.replicaset import deletion_order
from kubesandbox.objects import Obj, parse_time

JOB_KEY = "jobs.batch"
MAX_BACKOFF = 360.0
"""kube's cap on the delay before a failed pod is replaced (6 min)."""
SUCCESS = ("SuccessCriteriaMet", "Complete")
FAILURE = ("FailureTarget", "Failed")
COMPLETIONS_REACHED = ("CompletionsReached", "Reached expected number of succeeded pods")
BACKOFF_EXCEEDED = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
DEADLINE_EXCEEDED = ("DeadlineExceeded", "Job was active longer than specified deadline")


@dataclass(frozen=True)
class JobPlan:
    """What one look at a Job decides: pods to create (their completion indexes) and delete,
    its status, when to look again (seconds) and whether its time to live has run out (then
    it is deleted)."""

    status: Obj
    create: tuple[int | None, ...] = ()  # a pod per entry: its completion index, or None
    delete: tuple[str, ...] = ()
    wake_in: float | None = None
    expired: bool = False


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _condition(kind: str, reason: str, message: str, moment: datetime, ok: bool = True) -> Obj:
    stamp = _stamp(moment)
    return {
        "type": kind,
        "status": "True" if ok else "False",
        "lastProbeTime": stamp,
        "lastTransitionTime": stamp,
        "reason": reason,
        "message": message,
    }


def _find(conditions: list[Obj], kind: str) -> Obj | None:
    return next((c for c in conditions if c["type"] == kind and c["status"] == "True"), None)


def _phase(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("phase", ""))


def finish_time(pod: Obj) -> datetime | None:
    """When a finished pod's last container ended (its latest condition change otherwise)."""
    status = pod.get("status") or {}
    stamps = [
        ((c.get("state") or {}).get("terminated") or {}).get("finishedAt")
        for c in status.get("containerStatuses") or ()
    ]
    stamps = [s for s in stamps if s] or [
        c.get("lastTransitionTime") for c in status.get("conditions") or ()
    ]
    times = [t for t in map(parse_time, stamps) if t is not None]
    return max(times, default=None)


def backoff_exceeded(job: Obj, pods: list[Obj]) -> bool:
    """kube's rule: more failed pods than `backoffLimit`; with restartPolicy OnFailure, also
    container restarts of running pods reaching it."""
    limit = int(job["spec"].get("backoffLimit", 6))
    failed = sum(1 for p in pods if _phase(p) == "Failed")
    if failed > limit:
        return True
    template_spec = job["spec"].get("template", {}).get("spec", {})
    if template_spec.get("restartPolicy") != "OnFailure":
        return False
    restarts = sum(
        int(c.get("restartCount", 0))
        for p in pods
        if _phase(p) in ("Pending", "Running")
        for key in ("initContainerStatuses", "containerStatuses")
        for c in (p.get("status") or {}).get(key) or ()
    )
    return restarts > 0 if limit == 0 else restarts >= limit


def replacement_delay(pods: list[Obj], now: datetime, base: float) -> float:
    """Seconds until a failed pod may be replaced: `base` doubled per failed pod, capped at
    6 minutes, counted from the latest failure (0 without failures)."""
    failed = [p for p in pods if _phase(p) == "Failed"]
    if not failed or base <= 0:
        return 0.0
    delay = min(MAX_BACKOFF, base * 2.0 ** (len(failed) - 1))
    last = max((t for t in map(finish_time, failed) if t is not None), default=now)
    return max(0.0, (last - now).total_seconds() + delay)


def _wanted(spec: Obj, active: int, succeeded: int) -> int:
    """How many pods should be active: up to `parallelism`, never more than the successes
    still missing; without `completions` (a work queue) none are added after a success."""
    parallelism = int(spec.get("parallelism", 1))
    completions = spec.get("completions")
    if spec.get("suspend"):
        return 0
    if completions is None:
        return parallelism if succeeded == 0 else min(active, parallelism)
    return max(0, min(parallelism, int(completions) - succeeded))


def completed(job: Obj, pods: list[Obj]) -> int:
    """The completions reached: succeeded pods, or in Indexed mode succeeded indexes."""
    if jobindex.is_indexed(job):
        return len(jobindex.succeeded_indexes(job, pods))
    return sum(1 for p in pods if _phase(p) == "Succeeded")


def _criteria(job: Obj, pods: list[Obj], start: datetime | None, now: datetime) -> Obj | None:
    """The interim condition (SuccessCriteriaMet or FailureTarget) the job meets now, if any:
    failure rules first, as kube checks them."""
    spec = job["spec"]
    deadline = spec.get("activeDeadlineSeconds")
    if start is not None and deadline is not None and now >= start + timedelta(seconds=deadline):
        return _condition(FAILURE[0], *DEADLINE_EXCEEDED, now)
    if backoff_exceeded(job, pods):
        return _condition(FAILURE[0], *BACKOFF_EXCEEDED, now)
    succeeded = completed(job, pods)
    completions = spec.get("completions")
    done = (
        succeeded >= int(completions)
        if completions is not None
        else succeeded > 0 and not any(is_active(p) for p in pods)
    )
    return _condition(SUCCESS[0], *COMPLETIONS_REACHED, now) if done else None


def _suspension(conditions: list[Obj], suspended: bool, now: datetime) -> list[Obj]:
    """The Suspended condition: True while suspended, False (JobResumed) after."""
    previous = next((c for c in conditions if c["type"] == "Suspended"), None)
    if previous is None and not suspended:
        return conditions
    if previous is not None and (previous["status"] == "True") == suspended:
        return conditions
    reason, message = (
        ("JobSuspended", "Job suspended") if suspended else ("JobResumed", "Job resumed")
    )
    others = [c for c in conditions if c["type"] != "Suspended"]
    return [*others, _condition("Suspended", reason, message, now, ok=suspended)]


def _counts(job: Obj, pods: list[Obj], active: int) -> Obj:
    """The counters kube writes: active, succeeded and failed when non-zero; ready,
    terminating and uncountedTerminatedPods always; completedIndexes of an Indexed job."""
    counts: Obj = {
        "active": active,
        "succeeded": sum(1 for p in pods if _phase(p) == "Succeeded"),
        "failed": sum(1 for p in pods if _phase(p) == "Failed"),
    }
    out = {key: value for key, value in counts.items() if value}
    terminating = [
        p
        for p in pods
        if p["metadata"].get("deletionTimestamp") and _phase(p) in ("", "Pending", "Running")
    ]
    out["ready"] = sum(1 for p in pods if is_active(p) and is_ready(p))
    out["terminating"] = len(terminating)
    out["uncountedTerminatedPods"] = {}
    if jobindex.is_indexed(job) and (done := jobindex.succeeded_indexes(job, pods)):
        out["completedIndexes"] = jobindex.format_indexes(done)
    return out


def _expiry(job: Obj, status: Obj, now: datetime) -> JobPlan:
    """A finished job: kept until `ttlSecondsAfterFinished` after it finished."""
    ttl = job["spec"].get("ttlSecondsAfterFinished")
    if ttl is None:
        return JobPlan(status)
    terminal = next(c for c in status["conditions"] if c["type"] in (SUCCESS[1], FAILURE[1]))
    finished = parse_time(status.get("completionTime") or terminal["lastTransitionTime"]) or now
    left = (finished + timedelta(seconds=int(ttl)) - now).total_seconds()
    return JobPlan(status, expired=True) if left <= 0 else JobPlan(status, wake_in=left)


def _finish(job: Obj, pods: list[Obj], status: Obj, interim: Obj, now: datetime) -> JobPlan:
    """The outcome is known (`interim`): no pod keeps running; once none is left, the
    terminal condition (Complete or Failed) follows the interim one."""
    active = [p for p in pods if is_active(p)]
    status |= _counts(job, pods, 0)
    if active or status["terminating"]:
        return JobPlan(status, delete=tuple(p["metadata"]["name"] for p in active))
    final = SUCCESS[1] if interim["type"] == SUCCESS[0] else FAILURE[1]
    status["conditions"] = [
        *status["conditions"],
        _condition(final, interim["reason"], interim["message"], now),
    ]
    if final == SUCCESS[1]:
        status["completionTime"] = _stamp(now)
    return _expiry(job, status, now)


def decide(job: Obj, pods: list[Obj], now: datetime, backoff: float) -> JobPlan:
    """One look at a job and its pods: what to create, delete and write, and when to look
    again. `backoff` is the delay before the first failed pod is replaced."""
    spec, old = job["spec"], job.get("status") or {}
    conditions = list(old.get("conditions") or [])
    active = [p for p in pods if is_active(p)]
    status: Obj = {k: v for k, v in old.items() if k in ("startTime", "completionTime")}
    if _find(conditions, SUCCESS[1]) or _find(conditions, FAILURE[1]):
        status |= {**_counts(job, pods, len(active)), "conditions": conditions}
        return _expiry(job, status, now)
    suspended = bool(spec.get("suspend"))
    if not suspended and "startTime" not in status:
        status["startTime"] = _stamp(now)
    start = None if suspended else parse_time(status.get("startTime"))
    interim = _find(conditions, SUCCESS[0]) or _find(conditions, FAILURE[0])
    if interim is None and (interim := _criteria(job, pods, start, now)) is not None:
        conditions.append(interim)
    if interim is not None:
        return _finish(job, pods, status | {"conditions": conditions}, interim, now)
    conditions = _suspension(conditions, suspended, now)
    wanted = _wanted(spec, len(active), completed(job, pods))
    create: tuple[int | None, ...] = ()
    delete: tuple[str, ...] = ()
    wake_in = None
    if len(active) > wanted:
        surplus = deletion_order(active)[: len(active) - wanted]
        delete = tuple(p["metadata"]["name"] for p in surplus)
    elif len(active) < wanted:
        delay = replacement_delay(pods, now, backoff)
        if delay > 0:
            wake_in = delay
        elif jobindex.is_indexed(job):
            create = tuple(jobindex.next_indexes(job, pods, active, wanted - len(active)))
        else:
            create = (None,) * (wanted - len(active))
    deadline = spec.get("activeDeadlineSeconds")
    if start is not None and deadline is not None:
        left = (start + timedelta(seconds=deadline) - now).total_seconds()
        wake_in = left if wake_in is None else min(wake_in, left)
    status |= _counts(job, pods, len(active) + len(create) - len(delete))
    if conditions:
        status["conditions"] = conditions
    return JobPlan(status, create, delete, wake_in)


def pod_from_template(job: Obj, index: int | None = None) -> Obj:
    """A new pod of a Job (named by the API server from `<job>-`, or `<job>-<index>-` with
    a completion index)."""
    template = copy.deepcopy(job["spec"]["template"])
    meta = template.get("metadata") or {}
    meta.pop("name", None)
    meta["generateName"] = job["metadata"]["name"] + "-"
    meta["ownerReferences"] = [owner_reference(job)]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template.get("spec", {})}
    return pod if index is None else jobindex.with_index(pod, job["metadata"]["name"], index)


class JobController(Controller):
    """Runs Jobs' pods, reacting to Job and pod events and to its own timers (replacement
    delays, deadlines, time to live)."""

    user_agent = "sandbox-job-controller"

    def __init__(self, api: ControllerAccess, backoff: float) -> None:
        super().__init__(api, [JOB_KEY, "pods"])
        self.backoff = backoff

    async def handle(self, key: str, kind: str, obj: Obj) -> None:
        """Sync the job that changed, or the one that controls the pod that changed."""
        if key == JOB_KEY:
            if kind != "DELETED":
                self.sync(obj)
            return
        owner = controller_of(obj, "Job")
        found = self.api.by_uid(owner) if owner else None
        if found is not None and found[0] == JOB_KEY:
            self.sync(found[1])

    def sync(self, job: Obj) -> None:
        """Create and delete pods as decided, write the status, set the next look."""
        meta = job["metadata"]
        if meta.get("deletionTimestamp"):
            return
        ns, name = meta["namespace"], meta["name"]
        plan = decide(
            job, self.api.dependents(meta["uid"], "pods"), datetime.now(UTC), self.backoff
        )
        if plan.expired:
            self.api.delete(JOB_KEY, ns, name)
            return
        for index in plan.create:
            self.api.create("pods", ns, pod_from_template(job, index), self.user_agent)
        for pod in plan.delete:
            self.api.delete("pods", ns, pod)
        live = self.api.get(JOB_KEY, ns, name)
        if live is not None:
            self.write(JOB_KEY, live, plan.status)
        if plan.wake_in is not None:
            self.wake(plan.wake_in, JOB_KEY, ns, name)
