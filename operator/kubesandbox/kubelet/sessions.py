"""Exec and attach sessions (`podstreams.Session`) over host processes.

- `PipeSession`: a command exec'd without a terminal: stdout and stderr apart, stdin piped.
- `PtySession`: a command exec'd with a terminal (`kubectl exec -it`): one pseudo-terminal
  for its input and output, resized on request.
- `AttachSession`: a running container: its log followed from now on (stdout and stderr
  are one log in the sandbox), its stdin when the container has `stdin: true`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import pty
import struct
import termios
from pathlib import Path

from kubesandbox.kubelet import podstatus, processes
from kubesandbox.kubelet.launch import Launch
from kubesandbox.podstreams import STDERR, STDOUT, Terminal

_CHUNK = 64 * 1024
_FOLLOW_SECONDS = 0.1
_EOT = b"\x04"  # what a terminal's ^D sends: end of input


class _Output:
    """Output chunks of several sources in arrival order, ended once every source ended."""

    def __init__(self, sources: int) -> None:
        self.queue: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()
        self.open = sources

    def put(self, channel: int, data: bytes) -> None:
        self.queue.put_nowait((channel, data))

    def end(self) -> None:
        self.queue.put_nowait((0, b""))

    async def read(self) -> tuple[int, bytes]:
        while self.open:
            channel, data = await self.queue.get()
            if channel:
                return channel, data
            self.open -= 1
        return 0, b""


class PipeSession:
    """A command exec'd without a terminal."""

    def __init__(self, process: asyncio.subprocess.Process, marker: str) -> None:
        self.process, self.marker = process, marker
        self.output = _Output(2)
        self._pumps = [
            asyncio.create_task(self._pump(STDOUT, process.stdout)),
            asyncio.create_task(self._pump(STDERR, process.stderr)),
        ]

    @classmethod
    async def start(cls, how: Launch, marker: str, stdin: bool) -> PipeSession:
        """Spawn the command of `how`, marked with `marker`."""
        pipe = asyncio.subprocess.PIPE
        process = await asyncio.create_subprocess_exec(
            *how.argv,
            env={**how.env, processes.MARKER_ENV: marker},
            cwd=how.cwd,
            stdin=pipe if stdin else asyncio.subprocess.DEVNULL,
            stdout=pipe,
            stderr=pipe,
            start_new_session=True,
        )
        return cls(process, marker)

    async def _pump(self, channel: int, stream: asyncio.StreamReader | None) -> None:
        while stream is not None and (chunk := await stream.read(_CHUNK)):
            self.output.put(channel, chunk)
        self.output.end()

    async def read(self) -> tuple[int, bytes]:
        """The next chunk of stdout or stderr; (0, b"") once both ended."""
        return await self.output.read()

    def write(self, data: bytes) -> None:
        """Feed stdin."""
        stdin = self.process.stdin
        if stdin is not None and not stdin.is_closing():
            stdin.write(data)

    def close_stdin(self) -> None:
        """EOF on stdin."""
        if self.process.stdin is not None:
            self.process.stdin.close()

    def resize(self, width: int, height: int) -> None:
        """No terminal: nothing to resize."""

    async def wait(self) -> int | None:
        """The command's exit code."""
        return podstatus.exit_code(await self.process.wait())

    async def stop(self) -> None:
        """Kill the command and whatever it started."""
        await processes.kill(self.process, self.marker)
        for pump in self._pumps:
            pump.cancel()


def _set_size(terminal: int, width: int, height: int) -> None:
    with contextlib.suppress(OSError):
        fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


def _controlling_terminal() -> None:  # runs in the child, between fork and exec
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class PtySession:
    """A command exec'd with a pseudo-terminal as its stdin, stdout and stderr."""

    def __init__(self, process: asyncio.subprocess.Process, master: int, marker: str) -> None:
        self.process, self.master, self.marker = process, master, marker
        self.output = _Output(1)
        os.set_blocking(master, False)
        asyncio.get_running_loop().add_reader(master, self._readable)

    @classmethod
    async def start(cls, how: Launch, marker: str, size: Terminal) -> PtySession:
        """Spawn the command of `how` on a new terminal of `size`, marked with `marker`: the
        size is set first, so the command reads it when it starts (`stty size`, a shell)."""
        master, slave = pty.openpty()
        _set_size(master, size.width, size.height)
        try:
            process = await asyncio.create_subprocess_exec(
                *how.argv,
                env={**how.env, "TERM": how.env.get("TERM", "xterm"), processes.MARKER_ENV: marker},
                cwd=how.cwd,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                start_new_session=True,
                preexec_fn=_controlling_terminal,
            )
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        return cls(process, master, marker)

    def _readable(self) -> None:
        try:
            data = os.read(self.master, _CHUNK)
        except BlockingIOError:
            return
        except OSError:  # EIO: the terminal's last process is gone
            data = b""
        if data:
            self.output.put(STDOUT, data)
            return
        asyncio.get_running_loop().remove_reader(self.master)
        self.output.end()

    async def read(self) -> tuple[int, bytes]:
        """The next chunk the terminal shows; (0, b"") once it closed."""
        return await self.output.read()

    def write(self, data: bytes) -> None:
        """Type on the terminal."""
        with contextlib.suppress(OSError):
            os.write(self.master, data)

    def close_stdin(self) -> None:
        """^D: end of input for the program reading the terminal."""
        self.write(_EOT)

    def resize(self, width: int, height: int) -> None:
        """Set the terminal's size (the program gets SIGWINCH)."""
        _set_size(self.master, width, height)

    async def wait(self) -> int | None:
        """The command's exit code."""
        return podstatus.exit_code(await self.process.wait())

    async def stop(self) -> None:
        """Kill the command, close the terminal."""
        await processes.kill(self.process, self.marker)
        asyncio.get_running_loop().remove_reader(self.master)
        with contextlib.suppress(OSError):
            os.close(self.master)


class AttachSession:
    """A running container: its log from now on, and its stdin when it has one."""

    def __init__(self, process: asyncio.subprocess.Process, log: Path, stdin_once: bool) -> None:
        self.process, self.log, self.stdin_once = process, log, stdin_once
        self.offset = log.stat().st_size if log.exists() else 0

    async def read(self) -> tuple[int, bytes]:
        """The next chunk the container writes; (0, b"") once its run ended."""
        while True:
            ended = self.process.returncode is not None
            with contextlib.suppress(FileNotFoundError), self.log.open("rb") as handle:
                handle.seek(self.offset)
                data = handle.read(_CHUNK)
                if data:
                    self.offset += len(data)
                    return STDOUT, data
            if ended:
                return 0, b""
            await asyncio.sleep(_FOLLOW_SECONDS)

    def write(self, data: bytes) -> None:
        """Feed the container's stdin (a container without `stdin: true` has none)."""
        stdin = self.process.stdin
        if stdin is not None and not stdin.is_closing():
            stdin.write(data)

    def close_stdin(self) -> None:
        """EOF on the container's stdin with `stdinOnce`; otherwise it stays open for the
        next attach, as in Kubernetes."""
        if self.stdin_once and self.process.stdin is not None:
            self.process.stdin.close()

    def resize(self, width: int, height: int) -> None:
        """Containers run without a terminal in the sandbox."""

    async def wait(self) -> int | None:
        """None: attaching reports no exit code."""
        return None

    async def stop(self) -> None:
        """Stop following; the container goes on."""
