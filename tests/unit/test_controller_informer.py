"""The operator's own watches of its children: the first LIST, the watch from its version
with the server-side selector, bookmarks, resuming after the server ends a watch or the
connection fails, and a LIST again after a 410 Gone that forgets what vanished meanwhile."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import kopf
import pytest
from prometheus_client import CollectorRegistry

from bigmodel.controller import informer as informer_module
from bigmodel.controller.caches import Listing
from bigmodel.controller.context import OperatorContext
from bigmodel.controller.informer import Informer, Informers
from bigmodel.controller.job.controller import JobController
from bigmodel.controller.job.departures import Departures
from bigmodel.controller.job.timing import Timing
from bigmodel.controller.k8s import ApiError
from bigmodel.controller.queuemetrics import WorkQueueMetrics
from bigmodel.manifests.frameworks import Member
from bigmodel.manifests.job import LABEL_RANK, LABEL_ROLE

Event = dict[str, Any]
Watch = list[Event] | Exception
"""What one watch request brings: its events (then the server ends it), or a failure."""


class ScriptedKube:
    """Answers each LIST and each watch with the next of its scripts, recording what was
    asked; cancels the informer once the watches' script is spent."""

    def __init__(self, lists: list[list[dict[str, Any]]], watches: list[Watch]) -> None:
        self.lists, self.watches = lists, watches
        self.listed: list[tuple[str, dict[str, str]]] = []
        self.watched: list[tuple[str, dict[str, str]]] = []

    async def request(
        self, method: str, path: str, params: Mapping[str, str] | None = None, **_: Any
    ) -> dict[str, Any]:
        self.listed.append((path, dict(params or {})))
        version = str(100 * len(self.listed))
        return {
            "kind": "PodList",
            "metadata": {"resourceVersion": version},
            "items": self.lists.pop(0),
        }

    async def watch(self, path: str, params: Mapping[str, str]) -> AsyncIterator[Event]:
        self.watched.append((path, dict(params)))
        if not self.watches:
            raise asyncio.CancelledError()
        script = self.watches.pop(0)
        if isinstance(script, Exception):
            raise script
        for event in script:
            yield event


def pod(name: str, version: str, rank: int = 0, job_uid: str = "uid-1") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "ns",
            "uid": f"uid-{name}",
            "resourceVersion": version,
            "labels": {LABEL_ROLE: "node", LABEL_RANK: str(rank)},
            "ownerReferences": [
                {"kind": "BigModelJob", "name": "train", "uid": job_uid, "controller": True}
            ],
            "managedFields": [{"manager": "kubelet"}],
        },
        "spec": {"nodeName": "n1"},
        "status": {"phase": "Running"},
    }


def bookmark(version: str) -> Event:
    return {"type": "BOOKMARK", "object": {"kind": "Pod", "metadata": {"resourceVersion": version}}}


EXPIRED: Event = {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired"}}
SELECTED = {LABEL_ROLE: kopf.PRESENT, "app.kubernetes.io/managed-by": "op"}


def run(kube: ScriptedKube, listing: Listing) -> Informer:
    """Run an informer until the script is spent."""
    informer = Informer(kube, listing, "ns")  # type: ignore[arg-type]
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(informer.run())
    return informer


def recording() -> tuple[Listing, list[tuple[str | None, str]]]:
    fed: list[tuple[str | None, str]] = []
    listing = Listing("v1", "pods", SELECTED, lambda t, o: fed.append((t, o["metadata"]["name"])))
    return listing, fed


@pytest.fixture(autouse=True)
def no_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(informer_module, "RETRY_SECONDS", 0.0)


def test_it_lists_then_watches_from_the_lists_version_with_the_selector() -> None:
    kube = ScriptedKube([[pod("a", "90")]], [[{"type": "ADDED", "object": pod("b", "101")}]])
    listing, fed = recording()
    informer = run(kube, listing)
    assert fed == [(None, "a"), ("ADDED", "b")]
    assert informer.listed.is_set() and informer.count == 1
    path, params = kube.watched[0]
    assert path == "/api/v1/namespaces/ns/pods"
    assert params["labelSelector"] == f"{LABEL_ROLE},app.kubernetes.io/managed-by=op"
    assert params["resourceVersion"] == "100"  # the LIST's
    assert params["allowWatchBookmarks"] == "true"
    assert kube.listed[0][1]["labelSelector"] == params["labelSelector"]


def test_a_watch_the_server_ended_resumes_from_the_last_version_or_bookmark() -> None:
    first = [{"type": "MODIFIED", "object": pod("a", "120")}, bookmark("150")]
    kube = ScriptedKube([[pod("a", "90")]], [first, []])
    listing, fed = recording()
    run(kube, listing)
    assert fed == [(None, "a"), ("MODIFIED", "a")]  # a bookmark feeds nothing
    assert [params["resourceVersion"] for _, params in kube.watched] == ["100", "150", "150"]
    assert len(kube.listed) == 1


def test_a_failed_connection_resumes_the_watch_without_a_list() -> None:
    kube = ScriptedKube([[]], [aiohttp.ClientConnectionError("reset"), []])
    listing, _ = recording()
    run(kube, listing)
    assert len(kube.listed) == 1
    assert [params["resourceVersion"] for _, params in kube.watched] == ["100", "100", "100"]


@pytest.mark.parametrize("expired", [[EXPIRED], ApiError(410, "too old resource version")])
def test_a_410_gone_lists_again_and_watches_from_the_new_list(expired: Watch) -> None:
    kube = ScriptedKube([[pod("a", "90")], [pod("a", "190")]], [expired, []])
    listing, fed = recording()
    run(kube, listing)
    assert fed == [(None, "a"), (None, "a")]
    assert [params["resourceVersion"] for _, params in kube.watched] == ["100", "200", "200"]


def test_an_object_that_vanished_between_two_lists_is_fed_as_deleted() -> None:
    jobs = JobController(
        OperatorContext(None, None, None, 1.0),  # type: ignore[arg-type]
        Timing(),
        WorkQueueMetrics(CollectorRegistry()),
        1,
        1,
    )
    jobs.job_changed(None, {"metadata": {"name": "train", "namespace": "ns", "uid": "uid-1"}})
    listing = Listing("v1", "pods", SELECTED, jobs.pod_event)
    both = [pod("train-node-0", "90"), pod("train-node-1", "91", rank=1)]
    kube = ScriptedKube([both, [pod("train-node-0", "90")]], [[EXPIRED]])
    informer = run(kube, listing)
    assert [p.name for p in jobs.pods.of("uid-1")] == ["train-node-0"]
    gone = Departures(gone={Member("node", 1): None})
    assert jobs.departures == {"uid-1": gone}  # the job looks again
    assert list(informer.known) == ["ns/train-node-0"]
    assert "managedFields" not in informer.known["ns/train-node-0"]["metadata"]


def test_a_deleted_event_forgets_the_object() -> None:
    events = [{"type": "DELETED", "object": pod("a", "120")}, EXPIRED]
    kube = ScriptedKube([[pod("a", "90")], []], [events])
    listing, fed = recording()
    run(kube, listing)
    assert fed == [(None, "a"), ("DELETED", "a")]  # not deleted twice by the second LIST


def test_another_error_event_resumes_after_a_pause() -> None:
    error = {"type": "ERROR", "object": {"kind": "Status", "code": 500, "message": "boom"}}
    kube = ScriptedKube([[]], [[error], []])
    listing, _ = recording()
    run(kube, listing)
    assert len(kube.listed) == 1 and len(kube.watched) == 3


def test_informers_run_per_namespace_and_report_their_first_lists() -> None:
    async def scenario() -> tuple[int, list[str]]:
        kube = ScriptedKube([[pod("a", "1")], [pod("b", "2"), pod("c", "3")]], [])
        kube.watches = [[]] * 1000  # watches that end at once, until stopped
        informers = Informers()
        listing, _ = recording()
        informers.start(kube, [listing], ["ns", "other"])  # type: ignore[arg-type]
        informers.start(kube, [listing], ["ns", "other"])  # type: ignore[arg-type]
        count = await informers.listed()
        await informers.stop()
        return count, sorted(path for path, _ in kube.listed)

    count, paths = asyncio.run(scenario())
    assert count == 3
    assert paths == ["/api/v1/namespaces/ns/pods", "/api/v1/namespaces/other/pods"]


def test_informers_without_namespaces_watch_the_whole_cluster() -> None:
    async def scenario() -> list[str]:
        kube = ScriptedKube([[]], [[]] * 1000)
        informers = Informers()
        listing, _ = recording()
        informers.start(kube, [listing], [])  # type: ignore[arg-type]
        await informers.listed()
        await informers.stop()
        return [path for path, _ in kube.watched]

    assert set(asyncio.run(scenario())) == {"/api/v1/pods"}


def test_a_watch_expired_right_after_its_list_waits_before_listing_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(informer_module, "RETRY_SECONDS", 0.2)
    kube = ScriptedKube([[], [], []], [[EXPIRED], [EXPIRED]])
    listing, _ = recording()
    began = time.monotonic()
    run(kube, listing)
    assert len(kube.listed) == 3
    assert time.monotonic() - began >= 0.4  # no busy loop of LISTs (only a lower bound)
