"""Condition helpers every controller uses: transition times, terminal conditions, events."""

from __future__ import annotations

from datetime import timedelta

from bigmodel.api import Condition, ConditionStatus, ConditionType
from bigmodel.controller.conditions import set_condition, transitions, true_of
from support.jobs import NOW

WARNINGS = true_of((ConditionType.FAILED,))


def test_set_condition_keeps_the_transition_time_while_the_status_holds() -> None:
    earlier = NOW - timedelta(hours=1)
    first = set_condition([], "Running", True, "A", "", 1, earlier)
    again = set_condition(first, "Running", True, "B", "new", 2, NOW)
    flipped = set_condition(again, "Running", False, "C", "", 2, NOW)
    assert again[0].last_transition_time == earlier
    assert (again[0].reason, again[0].observed_generation) == ("B", 2)
    assert flipped[0].last_transition_time == NOW


def test_a_true_terminal_condition_never_changes() -> None:
    done = set_condition([], "Failed", True, "Invalid", "", 1, NOW)
    assert set_condition(done, "Failed", False, "Other", "", 1, NOW) == done


def test_events_report_transitions_not_repeats() -> None:
    now_true = Condition(
        type="Running", status=ConditionStatus.TRUE, reason="NodesRunning", last_transition_time=NOW
    )
    assert [e.reason for e in transitions([], [now_true], WARNINGS)] == ["NodesRunning"]
    assert transitions([now_true], [now_true], WARNINGS) == []


def test_a_warning_type_turning_true_is_a_warning_event() -> None:
    failed = set_condition([], ConditionType.FAILED, True, "PodFailed", "boom", 1, NOW)
    assert [(e.type, e.reason, e.message) for e in transitions([], failed, WARNINGS)] == [
        ("Warning", "PodFailed", "boom")
    ]


def test_a_quiet_type_turning_false_posts_no_event() -> None:
    running = set_condition([], ConditionType.RUNNING, True, "NodesRunning", "", 1, NOW)
    stopped = set_condition(running, ConditionType.RUNNING, False, "Restarting", "", 1, NOW)
    assert transitions(running, stopped, WARNINGS, (ConditionType.RUNNING,)) == []
    assert len(transitions(running, stopped, WARNINGS)) == 1
