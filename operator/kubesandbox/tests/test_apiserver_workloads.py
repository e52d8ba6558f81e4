"""The Job and DaemonSet fields the API server refuses, in kube-apiserver's words."""

from __future__ import annotations

from typing import Any

from kubesandbox.apiserver.cluster.workloads import problems

CONTAINERS = [{"name": "c", "image": "busybox", "args": ["true"]}]


def job(**template_spec: Any) -> Any:
    spec = {"containers": CONTAINERS, **template_spec}
    return {"kind": "Job", "spec": {"template": {"spec": spec}}}


def daemon_set(labels: Any, selector: Any = None, **template_spec: Any) -> Any:
    spec: Any = {"template": {"metadata": {"labels": labels},
                              "spec": {"containers": CONTAINERS, **template_spec}}}  # fmt: skip
    if selector is not None:
        spec["selector"] = selector
    return {"kind": "DaemonSet", "spec": spec}


def messages(obj: Any) -> list[str]:
    return [f"{c.field}: {c.message}" for c in problems(obj)]


def test_a_job_restarts_its_pods_on_failure_or_never() -> None:
    assert messages(job(restartPolicy="Never")) == []
    assert messages(job(restartPolicy="OnFailure")) == []
    assert messages(job()) == [
        'spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: '
        '"OnFailure", "Never"'
    ]


def test_a_jobs_counts_are_not_negative() -> None:
    bad = job(restartPolicy="Never")
    bad["spec"]["parallelism"] = -1
    assert messages(bad) == [
        "spec.parallelism: Invalid value: -1: must be greater than or equal to 0"
    ]


def test_an_indexed_job_needs_completions_and_other_modes_are_refused() -> None:
    indexed = job(restartPolicy="Never")
    indexed["spec"]["completionMode"] = "Indexed"
    assert messages(indexed) == [
        "spec.completions: Required value: when completion mode is Indexed"
    ]
    indexed["spec"]["completions"] = 3
    assert messages(indexed) == []
    indexed["spec"]["completionMode"] = "Sorted"
    assert messages(indexed) == [
        'spec.completionMode: Unsupported value: "Sorted": supported values: "NonIndexed", '
        '"Indexed"'
    ]


def test_a_pod_template_needs_containers() -> None:
    empty = {"kind": "Job", "spec": {"template": {"spec": {"restartPolicy": "Never"}}}}
    assert messages(empty) == ["spec.template.spec.containers: Required value"]


def test_a_daemon_sets_selector_is_required_and_matches_its_template() -> None:
    assert messages(daemon_set({"app": "a"}, {"matchLabels": {"app": "a"}})) == []
    assert messages(daemon_set({"app": "a"})) == ["spec.selector: Required value"]
    (mismatch,) = messages(daemon_set({"app": "a"}, {"matchLabels": {"app": "b"}}))
    assert mismatch.startswith("spec.template.metadata.labels: Invalid value")
    assert "`selector` does not match template `labels`" in mismatch


def test_a_daemon_sets_pods_restart_always() -> None:
    selector = {"matchLabels": {"app": "a"}}
    assert messages(daemon_set({"app": "a"}, selector, restartPolicy="Never")) == [
        'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"'
    ]


def test_other_kinds_are_not_checked() -> None:
    assert problems({"kind": "Deployment", "spec": {}}) == []
