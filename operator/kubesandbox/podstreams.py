"""How the API server reaches into a running pod, as kube-apiserver reaches the kubelet's
streaming server: `exec` a command in a container, `attach` to a container, connect to a
pod's port. The nodes (`kubelet.nodehost.NodeHost`) implement `PodStreams`; the API server's
exec, attach and port-forward endpoints use it, so neither half imports the other.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from kubesandbox.objects import Obj

STDOUT, STDERR = 1, 2
"""The output channels of a session (as the channel protocols number them)."""
Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@dataclass(frozen=True)
class Terminal:
    """A pseudo-terminal asked for, with the size it starts at (0x0: none was sent)."""

    width: int = 0
    height: int = 0


class Unavailable(Exception):
    """The pod cannot be reached that way now (not running, no such container, a node
    without processes, nothing listening); the message says why."""


class Session(Protocol):
    """A process's streams, as exec and attach carry them."""

    async def read(self) -> tuple[int, bytes]:
        """The next output chunk: (STDOUT or STDERR, data); (0, b"") once output ended."""

    def write(self, data: bytes) -> None:
        """Send data to the process's stdin (ignored without one)."""

    def close_stdin(self) -> None:
        """End the process's stdin (EOF)."""

    def resize(self, width: int, height: int) -> None:
        """Resize its terminal (ignored without one)."""

    async def wait(self) -> int | None:
        """Its exit code once output ended (None for an attach: the container goes on)."""

    async def stop(self) -> None:
        """End the session: kill an exec'd command, stop following an attached container."""


class PodStreams(Protocol):
    """What the node of a pod offers the API server; raises `Unavailable`."""

    async def exec(
        self, pod: Obj, container: str, command: Sequence[str], stdin: bool, tty: Terminal | None
    ) -> Session:
        """Run `command` in the container's environment, on a terminal of that size (`tty`)
        or with pipes (None)."""

    async def attach(self, pod: Obj, container: str) -> Session:
        """Follow the container's output (and feed its stdin when it has one)."""

    async def connect(self, pod: Obj, port: int) -> Connection:
        """A TCP connection to the pod's `port`."""
