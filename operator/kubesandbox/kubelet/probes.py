"""Startup, readiness and liveness probes: httpGet and tcpSocket against the pod IP, exec in
the container's environment; `watch_container` runs them in the kubelet's order (readiness
and liveness only once the startup probe has passed)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from kubesandbox.objects import Obj, port_number


async def probe_once(
    probe: Obj, container: Obj, pod_ip: str, env: Mapping[str, str], cwd: Path
) -> bool:
    """Run one probe; True when it succeeds within timeoutSeconds."""
    timeout = float(probe.get("timeoutSeconds", 1))
    try:
        async with asyncio.timeout(timeout):
            if "httpGet" in probe:
                get = probe["httpGet"]
                host = get.get("host") or pod_ip
                scheme = get.get("scheme", "HTTP").lower()
                url = (
                    f"{scheme}://{host}:{port_number(get['port'], container)}{get.get('path', '/')}"
                )
                headers = {h["name"]: h["value"] for h in get.get("httpHeaders") or ()}
                async with (
                    aiohttp.ClientSession() as session,
                    session.get(url, headers=headers, ssl=False, allow_redirects=False) as response,
                ):
                    return 200 <= response.status < 400
            if "tcpSocket" in probe:
                port = port_number(probe["tcpSocket"]["port"], container)
                _, writer = await asyncio.open_connection(
                    probe["tcpSocket"].get("host") or pod_ip, port
                )
                writer.close()
                return True
            if "exec" in probe:
                process = await asyncio.create_subprocess_exec(
                    *probe["exec"]["command"],
                    env=dict(env),
                    cwd=cwd,
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                    start_new_session=True,
                )
                try:
                    return await process.wait() == 0
                finally:
                    if process.returncode is None:
                        with contextlib.suppress(ProcessLookupError):
                            process.kill()
    except (OSError, TimeoutError, ValueError, aiohttp.ClientError):
        return False
    return False


async def run_probe(
    probe: Obj,
    attempt: Callable[[], Awaitable[bool]],
    report: Callable[[bool], None],
) -> None:
    """Probe every periodSeconds after initialDelaySeconds; report a change of outcome after
    successThreshold successes or failureThreshold failures in a row. Runs until cancelled."""
    period = float(probe.get("periodSeconds", 10))
    needed = {
        True: int(probe.get("successThreshold", 1)),
        False: int(probe.get("failureThreshold", 3)),
    }
    await asyncio.sleep(float(probe.get("initialDelaySeconds", 0)))
    state: bool | None = None
    last, streak = None, 0
    while True:
        outcome = await attempt()
        streak = streak + 1 if outcome == last else 1
        last = outcome
        if outcome != state and streak >= needed[outcome]:
            state = outcome
            report(outcome)
        await asyncio.sleep(period)


async def until_started(probe: Obj, attempt: Callable[[], Awaitable[bool]]) -> bool:
    """A startup probe: True at its first success, False after failureThreshold failures
    in a row (probing every periodSeconds after initialDelaySeconds)."""
    period = float(probe.get("periodSeconds", 10))
    threshold = int(probe.get("failureThreshold", 3))
    await asyncio.sleep(float(probe.get("initialDelaySeconds", 0)))
    failures = 0
    while not await attempt():
        failures += 1
        if failures >= threshold:
            return False
        await asyncio.sleep(period)
    return True


@dataclass(frozen=True)
class ProbeReports:
    """What the probes of one container run tell its kubelet worker."""

    started: Callable[[], None]
    """The startup probe passed (at once without one)."""
    ready: Callable[[bool], None]
    """Readiness changed (True once started, for a container without a readiness probe)."""
    unhealthy: Callable[[str], None]
    """A startup or liveness probe failed: stop the container (its restart policy decides)."""


async def watch_container(
    container: Obj, attempt: Callable[[Obj], Awaitable[bool]], reports: ProbeReports
) -> None:
    """Probe one container run as the kubelet does, until cancelled (the run ended) or a
    failure was reported: the startup probe first, then readiness and liveness together."""
    startup = container.get("startupProbe")
    if startup is not None and not await until_started(startup, lambda: attempt(startup)):
        threshold = int(startup.get("failureThreshold", 3))
        reports.unhealthy(f"Startup probe failed {threshold} times; the container is restarted")
        return
    reports.started()
    readiness, liveness = container.get("readinessProbe"), container.get("livenessProbe")
    loops = []
    if readiness is None:
        reports.ready(True)
    else:
        loops.append(run_probe(readiness, lambda: attempt(readiness), reports.ready))
    if liveness is not None:
        threshold = int(liveness.get("failureThreshold", 3))

        def alive(ok: bool) -> None:
            if not ok:
                reports.unhealthy(
                    f"Liveness probe failed {threshold} times; the container is restarted"
                )

        loops.append(run_probe(liveness, lambda: attempt(liveness), alive))
    await asyncio.gather(*loops)
