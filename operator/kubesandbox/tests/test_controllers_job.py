"""Decisions of the sandbox's Job controller: pods towards completions within parallelism,
failures against backoffLimit with a growing replacement delay, the deadline, suspension,
kube 1.33's conditions and counters, and the time to live of a finished job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from kubesandbox.controllers.job import decide, pod_from_template, replacement_delay
from kubesandbox.controllers.jobindex import INDEX_KEY, format_indexes

NOW = datetime(2026, 12, 7, 12, 0, 0, tzinfo=UTC)


def stamp(seconds_ago: float = 0) -> str:
    return (NOW - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def job(status: Any = None, **spec: Any) -> Any:
    spec = {"parallelism": 1, "completions": 1, "backoffLimit": 6, **spec}
    spec.setdefault("template", {"spec": {"restartPolicy": "Never", "containers": [{"name": "c"}]}})
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "j", "namespace": "ns", "uid": "u1", "generation": 1},
        "spec": spec,
        "status": {"startTime": stamp(60)} if status is None else status,
    }


def pod(name: str, phase: str = "Running", ready: bool = True, **extra: Any) -> Any:
    status: Any = {"phase": phase}
    if phase == "Running":
        status["conditions"] = [{"type": "Ready", "status": str(ready)}]
    if phase in ("Succeeded", "Failed"):
        finished = stamp(extra.pop("finished_ago", 30))
        status["containerStatuses"] = [{"state": {"terminated": {"finishedAt": finished}}}]
    status |= extra.pop("status", {})
    meta = {"name": name, "creationTimestamp": stamp(90), **extra}
    return {"metadata": meta, "spec": {"nodeName": "n"}, "status": status}


def types(status: Any) -> list[tuple[str, str, str]]:
    return [(c["type"], c["status"], c["reason"]) for c in status.get("conditions", ())]


def test_a_new_job_starts_its_first_pods_up_to_parallelism() -> None:
    plan = decide(job({}, parallelism=2, completions=5), [], NOW, 10)
    assert plan.create == (None, None)
    assert plan.status["startTime"] == stamp()
    assert plan.status["active"] == 2


def test_no_more_pods_than_the_successes_still_missing() -> None:
    pods = [pod(f"s{i}", "Succeeded") for i in range(4)]
    plan = decide(job(parallelism=3, completions=5), pods, NOW, 10)
    assert plan.create == (None,)
    assert plan.status["succeeded"] == 4


def test_lowering_parallelism_deletes_the_surplus_pods_not_ready_first() -> None:
    pods = [pod("a"), pod("b", ready=False), pod("c")]
    plan = decide(job(parallelism=2, completions=9), pods, NOW, 10)
    assert plan.delete == ("b",)
    assert plan.status["active"] == 2


def test_reaching_completions_meets_the_success_criteria_then_completes() -> None:
    plan = decide(job(completions=2), [pod("a", "Succeeded"), pod("b", "Succeeded")], NOW, 10)
    assert types(plan.status) == [
        ("SuccessCriteriaMet", "True", "CompletionsReached"),
        ("Complete", "True", "CompletionsReached"),
    ]
    assert plan.status["completionTime"] == stamp()
    assert plan.status["succeeded"] == 2 and "active" not in plan.status
    assert (plan.status["ready"], plan.status["terminating"]) == (0, 0)
    assert plan.status["uncountedTerminatedPods"] == {}


def test_a_work_queue_job_completes_once_a_pod_succeeded_and_none_runs() -> None:
    spec = {"parallelism": 2, "completions": None}
    running = decide(job(**spec), [pod("a", "Succeeded"), pod("b")], NOW, 10)
    assert (running.create, running.delete, types(running.status)) == ((), (), [])
    done = decide(job(**spec), [pod("a", "Succeeded"), pod("b", "Succeeded")], NOW, 10)
    assert [t for t, _, _ in types(done.status)] == ["SuccessCriteriaMet", "Complete"]


def test_more_failed_pods_than_the_backoff_limit_fail_the_job() -> None:
    pods = [pod("a", "Failed"), pod("b", "Failed")]
    plan = decide(job(backoffLimit=1), pods, NOW, 10)
    assert types(plan.status) == [
        ("FailureTarget", "True", "BackoffLimitExceeded"),
        ("Failed", "True", "BackoffLimitExceeded"),
    ]
    assert plan.status["failed"] == 2 and plan.create == ()
    assert "completionTime" not in plan.status


def test_a_failing_job_stops_its_running_pods_before_it_is_failed() -> None:
    pods = [pod("a", "Failed"), pod("b", "Failed"), pod("c")]
    plan = decide(job(backoffLimit=1, parallelism=2, completions=4), pods, NOW, 10)
    assert plan.delete == ("c",)
    assert [t for t, _, _ in types(plan.status)] == ["FailureTarget"]
    terminating = pod("c", deletionTimestamp=stamp())
    later = decide(job(plan.status, backoffLimit=1), [*pods[:2], terminating], NOW, 10)
    assert [t for t, _, _ in types(later.status)] == ["FailureTarget"]
    assert later.status["terminating"] == 1
    gone = decide(job(later.status, backoffLimit=1), pods[:2], NOW, 10)
    assert [t for t, _, _ in types(gone.status)] == ["FailureTarget", "Failed"]


def test_restarts_count_against_the_backoff_limit_with_restart_policy_on_failure() -> None:
    template = {"spec": {"restartPolicy": "OnFailure", "containers": [{"name": "c"}]}}
    restarted = pod("a", status={"containerStatuses": [{"restartCount": 2}]})
    plan = decide(job(backoffLimit=2, template=template), [restarted], NOW, 10)
    assert types(plan.status)[0] == ("FailureTarget", "True", "BackoffLimitExceeded")
    assert plan.delete == ("a",)


def test_a_failed_pod_is_replaced_after_a_delay_that_doubles_with_each_failure() -> None:
    one = [pod("a", "Failed", finished_ago=4)]
    waiting = decide(job(), one, NOW, 10)
    assert (waiting.create, waiting.wake_in) == ((), 6)
    assert decide(job(), [pod("a", "Failed", finished_ago=10)], NOW, 10).create == (None,)
    two = [pod("a", "Failed", finished_ago=30), pod("b", "Failed", finished_ago=5)]
    assert replacement_delay(two, NOW, 10) == 15
    many = [pod(f"f{i}", "Failed", finished_ago=0) for i in range(10)]
    assert replacement_delay(many, NOW, 10) == 360


def test_the_active_deadline_fails_the_job_and_is_woken_for() -> None:
    running = decide(job(activeDeadlineSeconds=100), [pod("a")], NOW, 10)
    assert running.wake_in == 40
    late = decide(job(activeDeadlineSeconds=50), [pod("a")], NOW, 10)
    assert types(late.status)[0] == ("FailureTarget", "True", "DeadlineExceeded")
    assert late.delete == ("a",)


def test_a_suspended_job_runs_no_pod_and_says_so() -> None:
    plan = decide(job({}, suspend=True), [pod("a")], NOW, 10)
    assert plan.delete == ("a",)
    assert "startTime" not in plan.status
    assert types(plan.status) == [("Suspended", "True", "JobSuspended")]
    resumed = decide(job(plan.status, suspend=False), [], NOW, 10)
    assert types(resumed.status) == [("Suspended", "False", "JobResumed")]
    assert resumed.create == (None,)


def test_a_finished_job_lives_its_ttl_after_completion_then_expires() -> None:
    finished = decide(job(completions=1), [pod("a", "Succeeded")], NOW, 10).status
    finished["completionTime"] = stamp(20)
    kept = decide(job(finished, ttlSecondsAfterFinished=30), [pod("a", "Succeeded")], NOW, 10)
    assert (kept.expired, kept.wake_in) == (False, 10)
    gone = decide(job(finished, ttlSecondsAfterFinished=20), [pod("a", "Succeeded")], NOW, 10)
    assert gone.expired
    assert not decide(job(finished), [pod("a", "Succeeded")], NOW, 10).expired


def test_a_finished_job_creates_nothing_more() -> None:
    finished = decide(job(completions=1), [pod("a", "Succeeded")], NOW, 10).status
    plan = decide(job(finished, completions=3), [pod("a", "Succeeded")], NOW, 10)
    assert (plan.create, plan.delete) == ((), ())


def test_a_jobs_pod_is_its_template_owned_by_the_job() -> None:
    template = {"metadata": {"labels": {"job-name": "j"}}, "spec": {"containers": [{"name": "c"}]}}
    created = pod_from_template(job(template=template))
    assert created["metadata"]["generateName"] == "j-"
    assert created["metadata"]["labels"] == {"job-name": "j"}
    owner = created["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("Job", "u1", True)


def indexed(pod_: Any, index: int) -> Any:
    pod_["metadata"]["annotations"] = {INDEX_KEY: str(index)}
    return pod_


def test_an_indexed_job_starts_the_lowest_indexes_neither_done_nor_running() -> None:
    pods = [indexed(pod("a", "Succeeded"), 0), indexed(pod("b"), 1), indexed(pod("c", "Failed"), 2)]
    plan = decide(job(completionMode="Indexed", completions=5, parallelism=3), pods, NOW, 0)
    assert plan.create == (2, 3)
    assert plan.status["completedIndexes"] == "0"


def test_an_indexed_job_completes_when_every_index_succeeded() -> None:
    pods = [indexed(pod(f"p{i}", "Succeeded"), i) for i in (0, 1, 2, 2)]
    plan = decide(job(completionMode="Indexed", completions=3), pods, NOW, 10)
    assert [t for t, _, _ in types(plan.status)] == ["SuccessCriteriaMet", "Complete"]
    assert plan.status["completedIndexes"] == "0-2"


def test_completed_indexes_are_written_as_intervals() -> None:
    assert format_indexes([7, 1, 3, 4, 5]) == "1,3-5,7"


def test_an_indexed_pod_knows_its_index_by_env_hostname_label_and_annotation() -> None:
    created = pod_from_template(job(completionMode="Indexed", completions=3), 2)
    assert created["metadata"]["generateName"] == "j-2-"
    assert created["metadata"]["annotations"][INDEX_KEY] == "2"
    assert created["metadata"]["labels"][INDEX_KEY] == "2"
    assert created["spec"]["hostname"] == "j-2"
    env = created["spec"]["containers"][0]["env"][0]
    assert env["name"] == "JOB_COMPLETION_INDEX"
    assert env["valueFrom"]["fieldRef"]["fieldPath"] == f"metadata.annotations['{INDEX_KEY}']"
