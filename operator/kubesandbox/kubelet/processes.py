"""Container processes: spawned in their own session, marked, stopped with their children.

Each process gets `KUBESANDBOX_PROCESS=<sandbox id>/<pod uid>/<container>/` in its
environment, which its children inherit even when they start their own session (torchrun's
workers do). Stopping a container signals its process group and then every process that
carries its marker, found by scanning /proc.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
from collections.abc import Callable, Mapping
from pathlib import Path

from kubesandbox import legacy

MARKER_ENV = legacy.ENV_PREFIX + "PROCESS"
_PROC = Path("/proc")
_KILL_WAIT_SECONDS = 5.0
_POLL_SECONDS = 0.05


def marked_pids(prefix: str) -> list[int]:
    """Processes whose marker starts with `prefix` (zombies have no environment left)."""
    needle = f"{MARKER_ENV}={prefix}".encode()
    found = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if any(var.startswith(needle) for var in environ.split(b"\0")):
            found.append(int(entry.name))
    return found


def signal_marked(prefix: str, sig: int) -> int:
    """Send `sig` to every marked process; how many there were."""
    pids = marked_pids(prefix)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
    return len(pids)


async def spawn(
    argv: list[str], env: Mapping[str, str], cwd: Path, log: Path, stdin: bool = False
) -> asyncio.subprocess.Process:
    """Start a process in a new session, stdout and stderr appended to `log`, stdin a pipe
    when asked for (a container with `stdin: true`, for attach) or else empty."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            *argv,
            env=dict(env),
            cwd=cwd,
            stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )


async def _wait_until(done: Callable[[], bool], seconds: float) -> bool:
    """Poll `done` (a /proc scan: nothing to await) until true or `seconds` passed; whether
    it came true."""
    for _ in range(max(1, math.ceil(seconds / _POLL_SECONDS))):
        if done():
            return True
        await asyncio.sleep(_POLL_SECONDS)
    return done()


def _signal_group(process: asyncio.subprocess.Process, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


async def stop(process: asyncio.subprocess.Process | None, marker: str, grace: float) -> None:
    """SIGTERM the process group and marked processes, SIGKILL what is left after `grace`."""
    if process is not None and process.returncode is None:
        _signal_group(process, signal.SIGTERM)
    signal_marked(marker, signal.SIGTERM)
    await _wait_until(
        lambda: (process is None or process.returncode is not None) and not marked_pids(marker),
        grace,
    )
    await kill(process, marker)


async def kill(process: asyncio.subprocess.Process | None, marker: str) -> bool:
    """SIGKILL the process group and every marked process, and wait until they are gone;
    whether they all are (a process stuck in the kernel can outlast the wait)."""
    if process is not None and process.returncode is None:
        _signal_group(process, signal.SIGKILL)
    gone = await _wait_until(lambda: not signal_marked(marker, signal.SIGKILL), _KILL_WAIT_SECONDS)
    if process is not None:
        try:
            await asyncio.wait_for(process.wait(), _KILL_WAIT_SECONDS)
        except TimeoutError:
            gone = False
    return gone
