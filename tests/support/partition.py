"""A TCP relay in front of the sandbox's API server that can be cut, as a network partition
cuts one replica off: while cut, its connections are closed and new ones are accepted but
never answered, so that the client's requests hang as they do when packets are lost."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class Partition:
    """Relays 127.0.0.1:`port` to `target_host`:`target_port` until `cut()`, again after
    `heal()`. Run it inside the test's event loop (`async with relay(...)`)."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.healed = asyncio.Event()
        self.healed.set()
        self._writers: set[asyncio.StreamWriter] = set()

    def cut(self) -> None:
        """Close every relayed connection; new ones hang until `heal()`."""
        self.healed.clear()
        for writer in list(self._writers):
            writer.close()

    def heal(self) -> None:
        """Relay again."""
        self.healed.set()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        upstream: asyncio.StreamWriter | None = None
        try:
            await self.healed.wait()
            upstream_reader, upstream = await asyncio.open_connection(*self.target)
            self._writers.add(upstream)
            await asyncio.gather(_pipe(reader, upstream), _pipe(upstream_reader, writer))
        except OSError:
            pass
        finally:
            for end in (writer, upstream):
                if end is not None:
                    self._writers.discard(end)
                    end.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


@contextlib.asynccontextmanager
async def relay(target_host: str, target_port: int) -> AsyncIterator[Partition]:
    """A running `Partition` to the target; closed on exit."""
    partition = Partition(target_host, target_port)
    server = await asyncio.start_server(partition._serve, "127.0.0.1", 0)
    partition.port = server.sockets[0].getsockname()[1]
    try:
        yield partition
    finally:
        partition.cut()
        server.close()
