"""The userspace service proxy: each ClusterIP service port forwards to its ready pods."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Mapping

_PIPE_BYTES = 65536

log = logging.getLogger(__name__)


Backend = tuple[str, int]


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(_PIPE_BYTES):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(ConnectionError, OSError, RuntimeError):
        writer.close()


class ServicePort:
    """One listening service port that forwards each connection to the next ready backend."""

    def __init__(self, server: asyncio.Server) -> None:
        self.server = server
        self.backends: list[Backend] = []
        self._turn = itertools.count()

    @classmethod
    async def listen(cls, address: str, port: int) -> ServicePort:
        """Listen on address:port."""
        holder: list[ServicePort] = []

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await holder[0].forward(reader, writer)

        server = await asyncio.start_server(handle, address, port, reuse_address=True)
        holder.append(cls(server))
        return holder[0]

    async def forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Connect to backends in round-robin order until one answers, then pipe both ways."""
        backends = list(self.backends)
        start = next(self._turn)
        for i in range(len(backends)):
            host, port = backends[(start + i) % len(backends)]
            try:
                up_reader, up_writer = await asyncio.open_connection(host, port)
            except OSError:
                continue
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
            return
        writer.close()

    def close(self) -> None:
        """Stop listening (open connections finish on their own)."""
        self.server.close()


class ServiceProxy:
    """The listening ports of all ClusterIP services."""

    def __init__(self) -> None:
        self._ports: dict[tuple[str, str, int], ServicePort] = {}  # (uid, ip, port)

    async def update(self, uid: str, address: str, backends: Mapping[int, list[Backend]]) -> None:
        """Listen on address:port for each service port and set its backends."""
        wanted = {(uid, address, port) for port in backends}
        for key in [k for k in self._ports if k[0] == uid and k not in wanted]:
            self._ports.pop(key).close()
        for key in sorted(wanted):
            if key not in self._ports:
                try:
                    self._ports[key] = await ServicePort.listen(address, key[2])
                except OSError as exc:
                    log.warning("service %s: cannot listen on %s:%s: %s", uid, *key[1:], exc)
                    continue
            self._ports[key].backends = backends[key[2]]

    def remove(self, uid: str) -> None:
        """Stop the ports of a deleted service."""
        for key in [k for k in self._ports if k[0] == uid]:
            self._ports.pop(key).close()

    def close(self) -> None:
        """Stop every port."""
        for port in self._ports.values():
            port.close()
        self._ports.clear()
