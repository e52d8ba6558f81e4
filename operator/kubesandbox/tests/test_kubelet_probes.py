"""Probes in the kubelet's order: startup first, then readiness and liveness; a startup or
liveness probe failing past its threshold asks for a restart."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator

from kubesandbox.kubelet.probes import ProbeReports, until_started, watch_container
from kubesandbox.objects import Obj

FAST = {"periodSeconds": 0}


def outcomes(*results: bool) -> Callable[[], Awaitable[bool]]:
    """An attempt that answers `results` in order, then repeats the last one."""
    left: Iterator[bool] = iter(results)
    last = [results[-1]]

    async def attempt() -> bool:
        last[0] = next(left, last[0])
        return last[0]

    return attempt


class Recorder:
    """The reports of one container run, in order."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.reports = ProbeReports(
            started=lambda: self.seen.append("started"),
            ready=lambda ok: self.seen.append(f"ready={ok}"),
            unhealthy=lambda why: self.seen.append(f"unhealthy: {why}"),
        )


def by_kind(**probes: Callable[[], Awaitable[bool]]) -> Callable[[Obj], Awaitable[bool]]:
    """An attempt per probe kind, told apart by the probe's `kind` key."""
    return lambda probe: probes[probe["kind"]]()


async def watch(container: Obj, attempt: Callable[[Obj], Awaitable[bool]]) -> Recorder:
    """Run the probes until they report a failure or 0.2 s pass."""
    recorder = Recorder()
    task = asyncio.create_task(watch_container(container, attempt, recorder.reports))
    await asyncio.wait({task}, timeout=0.2)
    task.cancel()
    return recorder


async def test_a_startup_probe_passes_at_its_first_success() -> None:
    assert await until_started({"failureThreshold": 5, **FAST}, outcomes(False, False, True))


async def test_a_startup_probe_fails_after_failure_threshold_failures_in_a_row() -> None:
    assert not await until_started({"failureThreshold": 3, **FAST}, outcomes(False))


async def test_without_probes_a_container_is_started_and_ready_at_once() -> None:
    recorder = await watch({"name": "c"}, by_kind())
    assert recorder.seen == ["started", "ready=True"]


async def test_readiness_and_liveness_wait_for_the_startup_probe() -> None:
    probed: list[str] = []

    def logged(kind: str, attempt: Callable[[], Awaitable[bool]]) -> Callable[[], Awaitable[bool]]:
        async def wrapped() -> bool:
            probed.append(kind)
            return await attempt()

        return wrapped

    container = {
        "name": "c",
        "startupProbe": {"kind": "startup", "failureThreshold": 10, **FAST},
        "readinessProbe": {"kind": "readiness", **FAST},
        "livenessProbe": {"kind": "liveness", **FAST},
    }
    attempt = by_kind(
        startup=logged("startup", outcomes(False, False, True)),
        readiness=logged("readiness", outcomes(True)),
        liveness=logged("liveness", outcomes(True)),
    )
    recorder = await watch(container, attempt)
    assert probed[:3] == ["startup"] * 3
    assert "startup" not in probed[3:] and {"readiness", "liveness"} <= set(probed[3:])
    assert recorder.seen[:2] == ["started", "ready=True"]


async def test_a_failing_startup_probe_asks_for_a_restart_and_never_starts() -> None:
    container = {
        "name": "c",
        "startupProbe": {"kind": "startup", "failureThreshold": 2, **FAST},
        "livenessProbe": {"kind": "liveness", **FAST},
    }
    recorder = await watch(container, by_kind(startup=outcomes(False), liveness=outcomes(True)))
    assert recorder.seen == ["unhealthy: Startup probe failed 2 times; the container is restarted"]


async def test_a_container_with_a_readiness_probe_is_not_ready_until_it_passes() -> None:
    container = {"name": "c", "readinessProbe": {"kind": "readiness", **FAST}}
    recorder = await watch(container, by_kind(readiness=outcomes(False, True)))
    assert recorder.seen[:2] == ["started", "ready=True"]
    assert "ready=False" not in recorder.seen  # never reported ready before: nothing changed


async def test_a_failing_liveness_probe_asks_for_a_restart_once_started() -> None:
    container = {"name": "c", "livenessProbe": {"kind": "liveness", "failureThreshold": 2, **FAST}}
    recorder = await watch(container, by_kind(liveness=outcomes(True, False)))
    assert recorder.seen[:2] == ["started", "ready=True"]
    assert recorder.seen[2] == (
        "unhealthy: Liveness probe failed 2 times; the container is restarted"
    )
