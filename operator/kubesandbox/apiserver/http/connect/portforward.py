"""`pods/portforward`: TCP connections to a pod's ports, over one of two protocols.

- `SPDY/3.1+portforward.k8s.io` (kubectl 1.31+): SPDY tunnelled in the WebSocket; each
  local connection is a pair of SPDY streams (`spdyforward`).
- `v4.channel.k8s.io` / `v4.base64.channel.k8s.io` (the Python client's `portforward`): one
  connection per port of the `ports` query for the life of the WebSocket, on channels 2i
  (data) and 2i+1 (errors), each opened with its port number; the WebSocket closes once the
  pod has closed every connection.

`kubectl port-forward svc/NAME` resolves the Service to one of its pods itself, so it
arrives here as a pod's port-forward too.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from kubesandbox.apiserver import errors
from kubesandbox.apiserver.http.connect import channels, handshake
from kubesandbox.apiserver.http.connect.spdyforward import SpdyForward
from kubesandbox.objects import Obj
from kubesandbox.podstreams import Connection, PodStreams, Unavailable

SPDY_TUNNEL = "SPDY/3.1+portforward.k8s.io"
PROTOCOLS = (SPDY_TUNNEL, *channels.PORT_FORWARD)
_CHUNK = 32 * 1024


async def serve(
    request: web.Request, pod: Obj, pods: PodStreams, record: Callable[[web.Request, int], None]
) -> web.StreamResponse:
    """Answer a port-forward request: checks, upgrade, then the forwarded connections."""
    handshake.require_running(pod)
    protocol = handshake.protocol(request, PROTOCOLS, ", ".join(PROTOCOLS))
    if protocol == SPDY_TUNNEL:
        ws = await handshake.upgrade(request, protocol, record)
        await SpdyForward(ws, pod, pods).run()
        return ws
    try:
        ports = channels.forward_ports(request.query.getall("ports", ()))
    except ValueError as exc:
        raise errors.bad_request(str(exc)) from exc
    ws = await handshake.upgrade(request, protocol, record)
    await _channels(ws, channels.Codec(protocol), pod, pods, ports)
    return ws


async def _channels(
    ws: web.WebSocketResponse,
    codec: channels.Codec,
    pod: Obj,
    pods: PodStreams,
    ports: list[int],
) -> None:
    """The channel protocol: a connection per port, until the pod or the client ends."""

    async def send(channel: int, data: bytes) -> None:
        await handshake.send(ws, codec.encode(channel, data))

    for i, port in enumerate(ports):
        await send(2 * i, channels.port_frame(port))
        await send(2 * i + 1, channels.port_frame(port))
    conns: list[Connection | None] = []
    for i, port in enumerate(ports):
        try:
            conns.append(await pods.connect(pod, port))
        except Unavailable as exc:
            conns.append(None)
            await send(2 * i + 1, str(exc).encode())
    pumps = [
        asyncio.create_task(_pump(conn[0], functools.partial(send, 2 * i)))
        for i, conn in enumerate(conns)
        if conn is not None
    ]
    inbound = asyncio.create_task(_inbound(ws, codec, conns))
    try:
        if pumps:
            done: asyncio.Future[list[None]] = asyncio.gather(*pumps)
            waited: set[asyncio.Future[Any]] = {inbound, done}
            await asyncio.wait(waited, return_when=asyncio.FIRST_COMPLETED)
        await ws.close()
    finally:
        for task in [inbound, *pumps]:
            task.cancel()
        for conn in conns:
            if conn is not None:
                conn[1].close()


async def _pump(reader: asyncio.StreamReader, send: Callable[[bytes], Awaitable[None]]) -> None:
    """Pod to client, until the pod closes the connection."""
    with contextlib.suppress(ConnectionError):
        while chunk := await reader.read(_CHUNK):
            await send(chunk)


async def _inbound(
    ws: web.WebSocketResponse, codec: channels.Codec, conns: list[Connection | None]
) -> None:
    """Client to pod: data channels to their connections, until the client goes."""
    async for channel, data in handshake.frames(ws, codec):
        index, error_channel = divmod(channel, 2)
        conn = conns[index] if index < len(conns) and not error_channel else None
        if conn is not None and data:
            conn[1].write(data)
            with contextlib.suppress(ConnectionError):
                await conn[1].drain()
