"""A job's node pods on their way out (`departures`): leaving, then gone, with the reason
the cluster gave kept until the member has a pod again; a pod leaving too long is looked up,
at most that often, and gone once the API no longer has it."""

from __future__ import annotations

from bigmodel.api import PodPhase
from bigmodel.controller.job.departures import LOOKUP_SECONDS, Departures
from bigmodel.controller.job.pods import NodePod
from bigmodel.manifests.frameworks.pytorch import node


def pod(uid: str, rank: int = 0, leaving: bool = True) -> NodePod:
    return NodePod(f"job-node-{uid}", uid, node(rank), PodPhase.RUNNING, leaving=leaving)


def test_a_gone_pods_reason_reaches_the_next_look_once() -> None:
    departures = Departures()
    departures.went(node(1), "Evicted")
    assert departures.look([pod("a", 0, leaving=False)], 0.0) == {node(1)}
    assert departures.reasons == {node(1): "Evicted"}
    assert departures.look([pod("a", 0, leaving=False)], 1.0) == set()  # consumed


def test_a_reason_is_kept_until_its_member_has_a_pod_again() -> None:
    departures = Departures()
    departures.went(node(1), "DeletionByTaintManager")
    departures.look([], 0.0)
    departures.look([], 1.0)
    assert departures.reasons == {node(1): "DeletionByTaintManager"}
    departures.look([pod("b", 1, leaving=False)], 2.0)
    assert departures.reasons == {}


def test_a_pod_gone_without_a_reason_is_news_but_keeps_no_reason() -> None:
    departures = Departures()
    departures.went(node(1), "Evicted")
    departures.look([], 0.0)
    departures.went(node(1), None)  # its new pod deleted by a user: the old reason is stale
    assert departures.look([], 1.0) == {node(1)}
    assert departures.reasons == {}


def test_a_pod_this_controller_deleted_is_leaving_before_the_cache_shows_it() -> None:
    departures = Departures()
    running = pod("a", leaving=False)
    departures.requested("a", 0.0)
    departures.look([running], 1.0)
    assert departures.seen([running]) == [pod("a")]
    assert departures.leaving == {"a": 0.0}
    departures.look([], 2.0)  # out of the cache: nothing left to mark
    assert departures.leaving == {}


def test_a_pod_leaving_too_long_is_dropped_once_the_api_has_it_no_more() -> None:
    departures = Departures()
    pods = [pod("a"), pod("b"), pod("c", leaving=False)]
    departures.look(pods, 0.0)
    assert departures.due(0.0) == set()  # just started leaving: not looked up
    assert departures.seen(pods) == pods
    departures.look(pods, LOOKUP_SECONDS)
    due = departures.due(LOOKUP_SECONDS)
    assert due == {"a", "b"}
    departures.found(due, {"b", "c"})
    assert departures.seen(pods) == pods[1:]  # "a" is gone, "b" still terminates
    departures.look(pods, LOOKUP_SECONDS + 1)
    assert departures.seen(pods) == pods[1:]  # remembered while the cache has it
    departures.look(pods[1:], LOOKUP_SECONDS + 2)  # its DELETED came at last
    assert departures.missed == set()


def test_lookups_are_at_most_one_per_lookup_period() -> None:
    departures, lookups = Departures(), []
    departures.look([pod("a")], 0.0)
    for step in range(1, 40):
        now = LOOKUP_SECONDS + step * 0.5
        departures.look([pod("a")], now)
        if departures.due(now):
            lookups.append(now)
    assert lookups == [LOOKUP_SECONDS + 0.5, 2 * LOOKUP_SECONDS + 0.5]


def test_pods_not_leaving_are_never_looked_up() -> None:
    departures = Departures()
    departures.look([pod("a", leaving=False)], 0.0)
    assert departures.due(100.0) == set()
    assert departures.next_lookup(100.0) is None


def test_the_job_looks_again_when_a_leaving_pod_is_due_for_a_lookup() -> None:
    # No watch event may ever come for a pod the cache missed: the next look is a timer.
    departures = Departures()
    assert departures.next_lookup(0.0) is None
    departures.look([pod("a"), pod("b"), pod("c", leaving=False)], 3.0)
    assert departures.next_lookup(3.0) == LOOKUP_SECONDS
    now = 3.0 + LOOKUP_SECONDS
    departures.look([pod("a"), pod("b")], now)
    departures.found(departures.due(now), {"b"})  # a is gone; b is looked up again later
    assert departures.next_lookup(now) == LOOKUP_SECONDS
    now += LOOKUP_SECONDS
    departures.look([pod("a"), pod("b")], now)
    departures.found(departures.due(now), set())
    assert departures.seen([pod("a"), pod("b")]) == []
    assert departures.next_lookup(now) is None
    departures.requested("d", now)  # deleted by the job itself, after the look that decided it
    assert departures.next_lookup(now) == LOOKUP_SECONDS
