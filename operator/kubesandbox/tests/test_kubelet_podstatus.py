"""Container states, pod phase and conditions as a kubelet reports them."""

from __future__ import annotations

import pytest

from kubesandbox.kubelet.podstatus import (
    ContainerRun,
    backoff,
    conditions,
    exit_code,
    phase,
    should_restart,
    terminated,
)


def run(code: int | None = None, done: bool = False, running: bool = False) -> ContainerRun:
    r = ContainerRun("c", "img", done=done)
    if code is not None:
        r.state = terminated(code, "t0", "t1")
    elif running:
        r.state = {"running": {"startedAt": "t0"}}
    return r


@pytest.mark.parametrize(
    ("init", "main", "expected"),
    [
        ([], [run()], "Pending"),
        ([run(0, done=True)], [run(running=True)], "Running"),
        ([run(running=True)], [run()], "Pending"),
        ([run(1, done=True)], [run()], "Failed"),
        ([], [run(0, done=True), run(0, done=True)], "Succeeded"),
        ([], [run(0, done=True), run(2, done=True)], "Failed"),
        ([], [run(0, done=True), run(running=True)], "Running"),
    ],
)
def test_phase(init: list[ContainerRun], main: list[ContainerRun], expected: str) -> None:
    assert phase(init, main) == expected


@pytest.mark.parametrize(
    ("policy", "code", "expected"),
    [("Always", 0, True), ("OnFailure", 0, False), ("OnFailure", 1, True), ("Never", 1, False)],
)
def test_should_restart(policy: str, code: int, expected: bool) -> None:
    assert should_restart(policy, code) is expected


def test_backoff_doubles_up_to_five_minutes() -> None:
    assert [backoff(n, 10) for n in (0, 1, 2, 5, 9)] == [10, 20, 40, 300, 300]


def test_a_signal_is_128_plus_its_number() -> None:
    assert (exit_code(-9), exit_code(-15), exit_code(3)) == (137, 143, 3)


def test_conditions_keep_their_transition_time_while_unchanged() -> None:
    main = [run(running=True)]
    first = conditions([], [], main, "t1")
    main[0].ready = True
    second = {c["type"]: c for c in conditions(first, [], main, "t2")}
    assert second["Ready"]["status"] == "True"
    assert second["Ready"]["lastTransitionTime"] == "t2"
    assert second["PodScheduled"]["lastTransitionTime"] == "t1"


def test_an_unready_pod_names_its_unready_containers() -> None:
    ready = {c["type"]: c for c in conditions([], [], [run(running=True)], "t")}["Ready"]
    assert (ready["reason"], ready["message"]) == (
        "ContainersNotReady",
        "containers with unready status: [c]",
    )
