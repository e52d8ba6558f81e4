"""Indexed Jobs (pure): each pod has a completion index in 0..completions-1, as kube gives it
(an annotation and a label, `JOB_COMPLETION_INDEX` in every container, the hostname
`<job>-<index>`); the job is done when every index has a succeeded pod."""

from __future__ import annotations

from collections.abc import Iterable

from kubesandbox.objects import Obj

INDEX_KEY = "batch.kubernetes.io/job-completion-index"
INDEX_ENV = {
    "name": "JOB_COMPLETION_INDEX",
    "valueFrom": {"fieldRef": {"fieldPath": f"metadata.annotations['{INDEX_KEY}']"}},
}


def is_indexed(job: Obj) -> bool:
    """Whether the job's completion mode is Indexed."""
    return bool(job["spec"].get("completionMode") == "Indexed")


def completion_index(pod: Obj) -> int | None:
    """A pod's completion index, None when it has none."""
    value = (pod["metadata"].get("annotations") or {}).get(INDEX_KEY, "")
    return int(value) if value.isdigit() else None


def succeeded_indexes(job: Obj, pods: Iterable[Obj]) -> set[int]:
    """The indexes below `completions` that have a succeeded pod."""
    completions = int(job["spec"].get("completions") or 0)
    found = {
        completion_index(p) for p in pods if (p.get("status") or {}).get("phase") == "Succeeded"
    }
    return {i for i in found if i is not None and i < completions}


def next_indexes(job: Obj, pods: Iterable[Obj], active: Iterable[Obj], count: int) -> list[int]:
    """The `count` lowest indexes that neither succeeded nor have an active pod."""
    busy = succeeded_indexes(job, pods) | {completion_index(p) for p in active} - {None}
    free = (i for i in range(int(job["spec"].get("completions") or 0)) if i not in busy)
    return [i for _, i in zip(range(count), free, strict=False)]


def format_indexes(indexes: Iterable[int]) -> str:
    """`status.completedIndexes`: sorted intervals, `1,3-5,7`."""
    ranges: list[list[int]] = []
    for index in sorted(indexes):
        if ranges and ranges[-1][1] == index - 1:
            ranges[-1][1] = index
        else:
            ranges.append([index, index])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges)


def with_index(pod: Obj, job_name: str, index: int) -> Obj:
    """A new pod of an Indexed job, given its index: named, labelled, annotated, hostnamed
    and its containers told (`JOB_COMPLETION_INDEX`)."""
    meta, spec = pod["metadata"], pod["spec"]
    meta["generateName"] = f"{job_name}-{index}-"
    meta["annotations"] = {**(meta.get("annotations") or {}), INDEX_KEY: str(index)}
    meta["labels"] = {**(meta.get("labels") or {}), INDEX_KEY: str(index)}
    spec["hostname"] = f"{job_name}-{index}"
    for container in [*spec.get("initContainers", ()), *spec.get("containers", ())]:
        env = [e for e in container.get("env") or () if e.get("name") != INDEX_ENV["name"]]
        container["env"] = [INDEX_ENV, *env]
    return pod
