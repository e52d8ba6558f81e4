"""The operator's liveness: daemons are stuck only once late for their own next look."""

from __future__ import annotations

from bigmodel.controller.health import Heartbeats


def test_a_daemon_sleeping_until_its_next_timer_is_not_stuck() -> None:
    beats = Heartbeats(stale_after=60)
    beats.beat("BigModelJob/a", next_within=300)
    now = beats.due["BigModelJob/a"]
    assert beats.stuck(now + 59) == []
    assert beats.stuck(now + 61) == ["BigModelJob/a"]


def test_a_daemon_that_looks_again_is_due_again_and_an_ended_one_is_forgotten() -> None:
    beats = Heartbeats(stale_after=60)
    beats.beat("a", next_within=1)
    first = beats.due["a"]
    beats.beat("a", next_within=300)
    assert beats.stuck(first + 120) == []
    beats.forget("a")
    assert beats.stuck(first + 10_000) == []
