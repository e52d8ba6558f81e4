"""The operator's own caches: children grouped by owner, the first LIST that fills them
(paged, with the handlers' label selectors), and the kinds' handlers feeding them."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import kopf
import pytest
from prometheus_client import CollectorRegistry

from bigmodel.controller.caches import Listing, fill, label_selector
from bigmodel.controller.context import OperatorContext
from bigmodel.controller.job.controller import JobController
from bigmodel.controller.job.departures import Departures
from bigmodel.controller.job.timing import Timing
from bigmodel.controller.objects import Grouped
from bigmodel.controller.queuemetrics import WorkQueueMetrics
from bigmodel.controller.service.controller import ServiceController
from bigmodel.manifests.frameworks import Member
from bigmodel.manifests.job import LABEL_RANK, LABEL_ROLE
from bigmodel.manifests.service import LABEL_SERVICE, RuntimeImages


class PagedKube:
    """Answers a LIST with its items `page` at a time, as the API server's continue tokens
    do, and records each request's parameters."""

    def __init__(self, items: list[dict[str, Any]], page: int) -> None:
        self.items, self.page = items, page
        self.requests: list[tuple[str, dict[str, str]]] = []

    async def request(
        self, method: str, path: str, params: Mapping[str, str] | None = None, **_: Any
    ) -> dict[str, Any]:
        params = dict(params or {})
        self.requests.append((path, params))
        start = int(params.get("continue", "0"))
        end = start + self.page
        meta = {"continue": str(end)} if end < len(self.items) else {}
        return {"kind": "PodList", "metadata": meta, "items": self.items[start:end]}


def shared() -> OperatorContext:
    none: Any = None
    return OperatorContext(none, none, none, 1.0)


def metrics() -> WorkQueueMetrics:
    return WorkQueueMetrics(CollectorRegistry())


def node_pod(name: str, job_uid: str, rank: int = 0, job: str = "train") -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "ns",
            "uid": f"uid-{name}",
            "labels": {LABEL_ROLE: "node", LABEL_RANK: str(rank)},
            "ownerReferences": [
                {"kind": "BigModelJob", "name": job, "uid": job_uid, "controller": True}
            ],
        },
        "status": {"phase": "Running"},
    }


def test_a_child_is_kept_under_its_owner_and_forgotten_when_gone() -> None:
    cache: Grouped[str] = Grouped()
    cache.put("ns/a", "job-1", "first")
    cache.put("ns/b", "job-1", "second")
    cache.put("ns/a", "job-1", "first, changed")
    assert sorted(cache.of("job-1")) == ["first, changed", "second"]
    cache.drop("ns/a")
    cache.drop("ns/b")
    cache.drop("ns/never-seen")
    assert cache.of("job-1") == [] and len(cache) == 0 and cache.groups == {}


def test_a_child_that_changes_owner_leaves_the_first() -> None:
    cache: Grouped[str] = Grouped()
    cache.put("ns/a", "job-1", "a")
    cache.put("ns/a", "job-2", "a")
    assert (cache.of("job-1"), cache.of("job-2")) == ([], ["a"])


def test_the_label_selector_is_kopfs_filter_as_the_api_reads_it() -> None:
    labels = {"bigmodel.dev/job": kopf.PRESENT, "app.kubernetes.io/managed-by": "op"}
    assert label_selector(labels) == "bigmodel.dev/job,app.kubernetes.io/managed-by=op"
    assert label_selector({}) == ""


def test_a_label_filter_the_api_cannot_express_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"label filter app: only kopf\.PRESENT or a string"):
        label_selector({"app": kopf.ABSENT})


def test_the_first_list_feeds_every_page_of_every_namespace_with_its_kind() -> None:
    items = [{"metadata": {"name": f"p{i}", "namespace": "ns"}} for i in range(5)]
    kube = PagedKube(items, page=2)
    fed: list[tuple[str | None, Mapping[str, Any]]] = []
    listing = Listing("v1", "pods", {"app": "x"}, lambda kind, obj: fed.append((kind, obj)))
    count = asyncio.run(fill(kube, [listing], ["ns", "other"]))  # type: ignore[arg-type]
    assert count == 10
    assert [obj["metadata"]["name"] for _, obj in fed[:5]] == ["p0", "p1", "p2", "p3", "p4"]
    assert {(kind, obj["kind"], obj["apiVersion"]) for kind, obj in fed} == {(None, "Pod", "v1")}
    paths = [path for path, _ in kube.requests]
    assert paths == ["/api/v1/namespaces/ns/pods"] * 3 + ["/api/v1/namespaces/other/pods"] * 3
    assert all(params["labelSelector"] == "app=x" for _, params in kube.requests)


def test_the_first_list_without_namespaces_is_cluster_wide() -> None:
    kube = PagedKube([], page=2)
    listing = Listing("apps/v1", "deployments", {}, lambda *_: None)
    asyncio.run(fill(kube, [listing], []))  # type: ignore[arg-type]
    assert [path for path, _ in kube.requests] == ["/apis/apps/v1/deployments"]


def test_a_node_pod_is_cached_under_its_job_uid_and_queues_the_job() -> None:
    jobs = JobController(shared(), Timing(), metrics(), 1, 1)
    jobs.pod_event(None, node_pod("train-node-0", "uid-1"))
    jobs.pod_event("ADDED", node_pod("other-node-0", "uid-2", job="other"))
    assert [pod.name for pod in jobs.pods.of("uid-1")] == ["train-node-0"]
    assert jobs.controller.queue.timed() == 2  # each job looked at `settle` seconds later


def test_a_node_pod_gone_leaves_the_cache_and_is_remembered_for_its_live_job() -> None:
    jobs = JobController(shared(), Timing(), metrics(), 1, 1)
    jobs.job_changed(None, {"metadata": {"name": "train", "namespace": "ns", "uid": "uid-1"}})
    jobs.pod_event(None, node_pod("train-node-1", "uid-1", rank=1))
    jobs.pod_event("DELETED", node_pod("train-node-1", "uid-1", rank=1))
    assert jobs.pods.of("uid-1") == []
    assert jobs.departures == {"uid-1": Departures(gone={Member("node", 1): None})}


def test_a_pod_that_is_no_node_pod_any_more_leaves_the_cache() -> None:
    jobs = JobController(shared(), Timing(), metrics(), 1, 1)
    jobs.pod_event(None, node_pod("train-node-0", "uid-1"))
    relabelled = node_pod("train-node-0", "uid-1")
    del relabelled["metadata"]["labels"][LABEL_RANK]
    jobs.pod_event("MODIFIED", relabelled)
    assert jobs.pods.of("uid-1") == []


def child(kind: str, name: str, service: str = "llm") -> dict[str, Any]:
    return {
        "kind": kind,
        "metadata": {"name": name, "namespace": "ns", "labels": {LABEL_SERVICE: service}},
        "spec": {},
        "status": {},
    }


def test_a_services_children_are_cached_by_service_and_queue_it() -> None:
    services = ServiceController(shared(), RuntimeImages(), metrics(), 1, 60.0)
    services.deployment_event(None, child("Deployment", "llm"))
    services.front_event(None, child("Service", "llm"))
    services.pod_event("ADDED", child("Pod", "llm-abc"))
    services.pod_event("ADDED", child("Pod", "chat-abc", service="chat"))
    seen = services.children.seen("ns/llm")
    assert seen.deployment is not None and seen.front is not None
    assert [pod.name for pod in seen.pods] == ["llm-abc"]
    assert services.controller.queue.depth() == 2  # ns/llm once, ns/chat


def test_a_services_child_gone_leaves_its_cache() -> None:
    services = ServiceController(shared(), RuntimeImages(), metrics(), 1, 60.0)
    services.pod_event(None, child("Pod", "llm-abc"))
    services.deployment_event(None, child("Deployment", "llm"))
    services.pod_event("DELETED", child("Pod", "llm-abc"))
    services.deployment_event("DELETED", child("Deployment", "llm"))
    seen = services.children.seen("ns/llm")
    assert (seen.deployment, seen.pods) == (None, [])


def test_a_deleted_job_leaves_no_trace_of_its_gone_pods() -> None:
    jobs = JobController(shared(), Timing(), metrics(), 1, 1)
    job = {"metadata": {"name": "train", "namespace": "ns", "uid": "uid-1"}}
    jobs.job_changed(None, job)
    jobs.pod_event("DELETED", node_pod("train-node-0", "uid-1"))
    jobs.job_changed("DELETED", job)
    assert (jobs.departures, jobs.jobs.get("ns/train")) == ({}, None)
