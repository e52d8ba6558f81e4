"""Pods the index still shows after they are gone: looked up once they have been leaving
too long, at most that often, and dropped when the API no longer has them."""

from __future__ import annotations

from typing import Any

from bigmodel.api import PodPhase
from bigmodel.controller.job.pods import NodePod
from bigmodel.controller.job.vanished import LEAVING_CHECK_SECONDS, VanishedPods
from bigmodel.manifests.frameworks.pytorch import node


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Api:
    """Answers the list of the job's pods with the uids it holds; counts the lists."""

    def __init__(self, *uids: str) -> None:
        self.uids, self.lists = set(uids), 0

    async def request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        assert (method, path) == ("GET", "/api/v1/namespaces/ns/pods")
        assert kwargs["params"] == {"labelSelector": "bigmodel.dev/job=job"}
        self.lists += 1
        return {"items": [{"metadata": {"uid": uid}} for uid in sorted(self.uids)]}


def pod(uid: str, leaving: bool = True) -> NodePod:
    return NodePod(f"job-node-{uid}", uid, node(0), PodPhase.RUNNING, leaving=leaving)


async def test_a_pod_leaving_too_long_is_dropped_once_the_api_has_it_no_more() -> None:
    api, clock = Api("b"), Clock()
    vanished = VanishedPods(api, "ns", "job", clock)  # type: ignore[arg-type]
    pods = [pod("a"), pod("b"), pod("c", leaving=False)]
    assert await vanished.drop(pods) == pods  # just started leaving: not looked up
    clock.now = LEAVING_CHECK_SECONDS
    assert await vanished.drop(pods) == pods[1:]  # "a" is gone, "b" still terminates
    assert await vanished.drop(pods) == pods[1:]  # remembered: no second look
    assert api.lists == 1


async def test_lookups_are_at_most_one_per_check_period() -> None:
    api, clock = Api("a"), Clock()
    vanished = VanishedPods(api, "ns", "job", clock)  # type: ignore[arg-type]
    await vanished.drop([pod("a")])
    for step in range(1, 40):
        clock.now = LEAVING_CHECK_SECONDS + step * 0.5
        await vanished.drop([pod("a")])
    assert api.lists == 2  # at 10 s and at 20 s


async def test_running_pods_are_never_looked_up() -> None:
    api, clock = Api(), Clock()
    vanished = VanishedPods(api, "ns", "job", clock)  # type: ignore[arg-type]
    clock.now = 100
    pods = [pod("a", leaving=False)]
    assert await vanished.drop(pods) == pods
    assert api.lists == 0


async def test_the_job_looks_again_when_a_leaving_pod_is_due_for_a_lookup() -> None:
    # No watch event may ever come for a pod the index missed: the next look is a timer.
    api, clock = Api("b"), Clock()
    vanished = VanishedPods(api, "ns", "job", clock)  # type: ignore[arg-type]
    assert vanished.next_look() is None
    clock.now = 3.0
    await vanished.drop([pod("a"), pod("b"), pod("c", leaving=False)])
    assert vanished.next_look() == LEAVING_CHECK_SECONDS
    clock.now = 3.0 + LEAVING_CHECK_SECONDS
    await vanished.drop([pod("a"), pod("b")])  # a is gone; b is looked up again 10 s later
    assert vanished.next_look() == LEAVING_CHECK_SECONDS
    api.uids = set()
    clock.now += LEAVING_CHECK_SECONDS
    assert await vanished.drop([pod("a"), pod("b")]) == []
    assert vanished.next_look() is None
    vanished.leaving("d")  # deleted by the job itself, after the look that decided it
    assert vanished.next_look() == LEAVING_CHECK_SECONDS
