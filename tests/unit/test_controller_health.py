"""The operator's own health: liveness fails only for what a restart cures (a blocked event
loop, a work queue that stopped draining, a watch that stopped delivering), readiness also
until the caches are synced and for an API server that stopped answering; the endpoints
answer from their own thread, also while the loop is blocked."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from bigmodel.controller.health import Health, WatchLag, serving
from kubesandbox.testing import free_port, probe


def test_a_queue_waiting_for_its_workers_past_the_stall_fails_liveness() -> None:
    waited = {"bigmodeljob": 59.0, "bigmodelservice": 0.0}
    health = Health(drain_stall=60, caches_synced=True)
    health.queues = {name: (lambda name=name: waited[name]) for name in waited}  # type: ignore[misc]
    assert health.liveness() == {}
    waited["bigmodeljob"] = 61.0
    failing = health.liveness()
    assert set(failing) == {"queues"} and "bigmodeljob" in failing["queues"]
    assert "bigmodelservice" not in failing["queues"]


def test_readiness_fails_until_the_caches_are_synced() -> None:
    health = Health()
    health.tick = 0.0
    assert "caches" in health.readiness(now=1)
    assert health.liveness(now=1) == {}  # a restart would not sync them sooner
    health.caches_synced = True
    assert health.readiness(now=1) == {}


def obj(uid: str, version: str) -> dict[str, Any]:
    return {"metadata": {"uid": uid, "resourceVersion": version}}


def tracking(*uids: str) -> WatchLag:
    lag = WatchLag(stale_after=120)
    for uid in uids:
        lag.track(uid)
    return lag


def test_a_write_the_watch_delivers_is_not_lagging() -> None:
    lag = tracking("a", "b")
    lag.wrote(obj("a", "10"), now=0)
    lag.delivered("a", "10")
    lag.wrote(obj("b", "12"), now=0)
    lag.delivered("b", "15")  # a later change (the watch coalesces nothing, kopf may batch)
    assert lag.lagging(now=1000) == []


def test_a_write_never_delivered_lags_from_its_first_unseen_write() -> None:
    lag = tracking("a")
    lag.wrote(obj("a", "10"), now=0)
    lag.wrote(obj("a", "11"), now=100)
    lag.delivered("a", "10")  # the first came back, the second never does
    assert lag.lagging(now=200) == []
    assert lag.lagging(now=221) == ["a"]
    lag.forget("a")  # the object was deleted
    assert lag.lagging(now=1000) == []
    lag.wrote(obj("a", "12"), now=1000)  # a late write of a daemon stopping: not followed
    assert lag.lagging(now=2000) == [] and not lag.seen


def test_a_write_that_changed_nothing_expects_nothing() -> None:
    lag = tracking("a")
    lag.delivered("a", "10")
    lag.wrote(obj("a", "10"), now=0)  # a no-op apply returns the version already seen
    assert lag.lagging(now=1000) == []


def test_opaque_versions_only_match_equal() -> None:
    lag = tracking("a")
    lag.wrote(obj("a", "v-b"), now=0)
    lag.delivered("a", "v-c")
    assert lag.lagging(now=500) == ["a"]
    lag.delivered("a", "v-b")
    assert lag.lagging(now=500) == []


def test_api_errors_fail_readiness_after_the_grace_never_liveness() -> None:
    health = Health(api_grace=30, caches_synced=True)
    health.tick, health.api_failing, health.api_error = 100.0, 90.0, "500 Internal Server Error"
    assert health.liveness(now=101) == {}
    assert health.readiness(now=110) == {}  # failing since 20 s: within the grace
    assert "apiServer" in health.readiness(now=121)
    assert health.liveness(now=121) == {}


def test_liveness_names_a_blocked_loop_a_stuck_queue_and_lagging_watches() -> None:
    health = Health(loop_stall=30, drain_stall=60)
    assert "started" in health.readiness()  # before the first tick
    health.tick = 1000.0
    health.queues["bigmodeljob"] = lambda: 100.0
    health.watches.written["y"] = ("5", 800.0)
    failing = health.liveness(now=1031)
    assert set(failing) == {"eventLoop", "queues", "watches"}
    assert "bigmodeljob" in failing["queues"]


def late_get(port: int, path: str, after: float) -> tuple[int, dict[str, Any]]:
    time.sleep(after)
    return probe(port, path)


def test_the_endpoints_answer_while_the_event_loop_is_blocked() -> None:
    health, port = Health(loop_stall=0.5, caches_synced=True), free_port()
    calls: list[int] = []

    async def api() -> None:
        calls.append(1)

    async def block_the_loop() -> tuple[int, dict[str, Any]]:
        checks = asyncio.create_task(health.run_checks(api))
        await asyncio.sleep(0.2)
        assert probe(port, "/readyz")[0] == 200
        with ThreadPoolExecutor(1) as kubelet:  # its probe, while the loop is blocked
            answer = kubelet.submit(late_get, port, "/healthz", 1.2)
            time.sleep(2.0)  # noqa: ASYNC251 - a handler that blocks the loop
            checks.cancel()
            return answer.result()

    with serving(health, port, host="127.0.0.1"):
        code, body = asyncio.run(block_the_loop())
        assert probe(port, "/nope")[0] == 404
    assert calls
    assert code == 503 and body["status"] == "failing", body
    assert "eventLoop" in body["failing"]


@pytest.mark.parametrize("failure", [RuntimeError("500 boom"), TimeoutError()])
def test_a_failed_api_check_is_recorded_and_retried(failure: Exception) -> None:
    health = Health()
    answers = [failure, None]

    async def api() -> None:
        if (answer := answers.pop(0)) is not None:
            raise answer

    async def two_checks() -> str:
        checks = asyncio.create_task(health.run_checks(api))
        await asyncio.sleep(0.1)
        error = health.api_error
        await asyncio.sleep(1.2)  # the retry comes one tick later
        checks.cancel()
        return error

    assert asyncio.run(two_checks())
    assert health.api_error == "" and health.api_failing is None
