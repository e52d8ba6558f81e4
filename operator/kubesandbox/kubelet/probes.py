"""Readiness and liveness probes: httpGet and tcpSocket against the pod IP, exec in the
container's environment."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
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
