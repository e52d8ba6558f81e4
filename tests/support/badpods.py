"""Pods whose metrics endpoints misbehave, for telemetry tests and benchmarks: each one a
real server on its own loopback address (as pods have), answering as a broken exporter
would. `BadPods.start(kinds)` starts them and gives the scrape targets."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from aiohttp import web

from bigmodel.runtime.exposition import NODE_STEP_SECONDS
from bigmodel.telemetry.collect import Target, pod_url
from bigmodel.telemetry.readings import MissingReason

GOOD_SECONDS = 0.25
HUGE_BYTES = 16 * 1024 * 1024
EXPECTED: dict[str, MissingReason | None] = {
    "good": None,
    "slow": MissingReason.TIMEOUT,  # answers, 30 s late
    "silent": MissingReason.TIMEOUT,  # accepts the connection, never answers
    "trickle": MissingReason.TIMEOUT,  # a byte every 0.1 s, never done
    "refused": MissingReason.CONNECTION,  # nothing listens
    "reset": MissingReason.CONNECTION,  # closes the connection on the request
    "garbage": MissingReason.METRIC_ABSENT,  # random bytes: no line of the metric
    "garbled": MissingReason.MALFORMED,  # the metric's line, broken
    "huge": MissingReason.TOO_LARGE,  # 16 MiB, no Content-Length
    "zero": MissingReason.INVALID,  # T_i = 0: no duration, never counted as one
    "nan": MissingReason.INVALID,
    "error": MissingReason.HTTP_STATUS,  # 500
}
"""What each kind of pod is reported as: missing with this reason (None: a T_i)."""
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _text(body: str) -> Handler:
    async def answer(request: web.Request) -> web.Response:
        return web.Response(text=body)

    return answer


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(30)
    return web.Response(text=f"{NODE_STEP_SECONDS} 1\n")


async def _trickle(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    await response.prepare(request)
    with contextlib.suppress(ConnectionError):  # until the scraper gives up
        while True:
            await response.write(b"#")
            await asyncio.sleep(0.1)
    return response


async def _huge(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    response.enable_chunked_encoding()
    await response.prepare(request)
    line = b"# padding of a runaway exporter\n" * 2048
    with contextlib.suppress(ConnectionError):  # the scraper stops reading at its limit
        for _ in range(HUGE_BYTES // len(line) + 1):
            await response.write(line)
        await response.write_eof()
    return response


async def _garbage(request: web.Request) -> web.Response:
    return web.Response(body=random.Random(7).randbytes(64 * 1024))


async def _reset(request: web.Request) -> web.Response:
    assert request.transport is not None
    request.transport.abort()
    return web.Response()


async def _error(request: web.Request) -> web.Response:
    return web.Response(text="internal error", status=500)


HANDLERS: dict[str, Handler] = {
    "good": _text(f"{NODE_STEP_SECONDS} {GOOD_SECONDS}\n"),
    "slow": _slow,
    "trickle": _trickle,
    "reset": _reset,
    "garbage": _garbage,
    "garbled": _text(f"{NODE_STEP_SECONDS}{{rank=0 0.5\n"),
    "huge": _huge,
    "zero": _text(f"{NODE_STEP_SECONDS} 0\n"),
    "nan": _text(f"{NODE_STEP_SECONDS} NaN\n"),
    "error": _error,
}


def _free_address(index: int) -> str:
    """A loopback address for pod `index` (127.77.x.y, as pods get their own)."""
    return f"127.77.{index // 250}.{index % 250 + 1}"


@dataclass
class BadPods:
    """Running misbehaving pods; `targets` in the order started. Close with `close()`."""

    targets: list[Target] = field(default_factory=list)
    kinds: dict[str, str] = field(default_factory=dict)
    """Target key -> kind of pod."""
    _runners: list[web.AppRunner] = field(default_factory=list)
    _servers: list[asyncio.Server] = field(default_factory=list)
    _hung: set[asyncio.StreamWriter] = field(default_factory=set)

    async def start(self, kinds: Sequence[str]) -> BadPods:
        """One pod of each kind listed (repeats allowed), keyed by its index."""
        for index, kind in enumerate(kinds):
            address, key = _free_address(index), str(index)
            port = await self._serve(kind, address)
            self.targets.append(Target(key, f"{kind}-{index}", pod_url(address, port)))
            self.kinds[key] = kind
        return self

    async def _serve(self, kind: str, address: str) -> int:
        if kind == "refused":
            with socket.socket() as probe:  # bound, then closed: nothing listens there
                probe.bind((address, 0))
                return int(probe.getsockname()[1])
        if kind == "silent":
            server = await asyncio.start_server(self._hang, address, 0)
            self._servers.append(server)
            return int(server.sockets[0].getsockname()[1])
        app = web.Application()
        app.router.add_get("/metrics", HANDLERS[kind])
        runner = web.AppRunner(app, shutdown_timeout=0.1, handler_cancellation=True)
        await runner.setup()
        await web.TCPSite(runner, address, 0).start()
        self._runners.append(runner)
        return int(runner.addresses[0][1])

    async def _hang(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._hung.add(writer)
        await reader.read()  # until the client gives up and closes

    async def close(self) -> None:
        for writer in self._hung:
            writer.close()
        for server in self._servers:
            server.close()
        for runner in self._runners:
            await runner.cleanup()
