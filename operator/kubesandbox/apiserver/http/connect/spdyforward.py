"""kubectl's port-forward: SPDY/3.1 streams tunnelled in a WebSocket (`spdy` frames).

For each local connection kubectl opens two streams with the headers `streamtype` (`error`
or `data`), `port` and `requestid`, and waits for a SYN_REPLY to each. Once both streams of
a request exist, the server connects to the pod's port: data frames flow both ways on the
data stream; when the pod closes the connection, both streams end (FIN); when it cannot be
reached, the error stream says why, then both end. PINGs are answered.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

from kubesandbox.apiserver.http.connect import spdy
from kubesandbox.objects import Obj
from kubesandbox.podstreams import PodStreams, Unavailable

_CHUNK = 32 * 1024


@dataclass
class _Request:
    """The streams of one forwarded connection, and what the client sent before it opened."""

    port: int
    error: int | None = None
    data: int | None = None
    inbound: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)


class SpdyForward:
    """One tunnelled SPDY connection: its streams, and a pod connection per request."""

    def __init__(self, ws: web.WebSocketResponse, pod: Obj, pods: PodStreams) -> None:
        self.ws, self.pod, self.pods = ws, pod, pods
        self.reader = spdy.FrameReader()
        self.headers = spdy.HeaderBlocks()
        self.requests: dict[str, _Request] = {}
        self.by_data: dict[int, _Request] = {}  # data stream id -> its request
        self.tasks: set[asyncio.Task[None]] = set()
        self.last_stream = 0

    async def run(self) -> None:
        """Serve frames until the client closes the WebSocket or sends GOAWAY."""
        try:
            async for message in self.ws:
                if message.type != WSMsgType.BINARY:
                    continue
                for frame in self.reader.feed(message.data):
                    if not await self._handle(frame):
                        return
        except spdy.ProtocolError:
            await self.ws.send_bytes(spdy.goaway(self.last_stream))
        finally:
            for task in list(self.tasks):
                task.cancel()
            await self.ws.close()

    async def _handle(self, frame: spdy.Frame) -> bool:
        """Act on one frame; False once the client says it is done (GOAWAY)."""
        if isinstance(frame, spdy.Data):
            request = self.by_data.get(frame.stream_id)
            if request is not None:
                if frame.data:
                    request.inbound.put_nowait(frame.data)
                if frame.fin:
                    request.inbound.put_nowait(None)
            return True
        if frame.type == spdy.SYN_STREAM:
            await self._open(frame)
        elif frame.type == spdy.PING:
            await self.ws.send_bytes(spdy.ping(frame.payload))
        elif frame.type == spdy.RST_STREAM:
            request = self.by_data.get(spdy.stream_of(frame))
            if request is not None:
                request.inbound.put_nowait(None)
        elif frame.type == spdy.GOAWAY:
            return False
        return True  # SETTINGS, WINDOW_UPDATE, HEADERS: nothing to do

    async def _open(self, frame: spdy.Control) -> None:
        """Accept a stream; start forwarding once both streams of its request exist."""
        stream_id, block = spdy.syn_stream(frame)
        headers = self.headers.decode(block)
        self.last_stream = max(self.last_stream, stream_id)
        await self.ws.send_bytes(spdy.syn_reply(stream_id, self.headers.encode({})))
        try:
            port = int(headers.get("port", ""))
        except ValueError:
            await self.ws.send_bytes(spdy.rst_stream(stream_id, spdy.CANCEL))
            return
        key = headers.get("requestid") or str(port)
        request = self.requests.setdefault(key, _Request(port))
        if headers.get("streamtype") == "data":
            request.data = stream_id
            self.by_data[stream_id] = request
        else:
            request.error = stream_id
        if request.error is not None and request.data is not None:
            del self.requests[key]
            task = asyncio.create_task(self._forward(request))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _forward(self, request: _Request) -> None:
        """Connect to the pod's port and copy both ways until the pod closes."""
        assert request.error is not None and request.data is not None
        error, data = request.error, request.data
        try:
            reader, writer = await self.pods.connect(self.pod, request.port)
        except Unavailable as exc:
            await self.ws.send_bytes(spdy.data(error, str(exc).encode()))
        else:
            upstream = asyncio.create_task(_to_pod(request.inbound, writer))
            try:
                with contextlib.suppress(ConnectionError):
                    while chunk := await reader.read(_CHUNK):
                        await self.ws.send_bytes(spdy.data(data, chunk))
            finally:
                upstream.cancel()
                writer.close()
        finally:
            self.by_data.pop(data, None)
        with contextlib.suppress(ConnectionError):
            await self.ws.send_bytes(spdy.data(data, b"", fin=True))
            await self.ws.send_bytes(spdy.data(error, b"", fin=True))


async def _to_pod(inbound: asyncio.Queue[bytes | None], writer: asyncio.StreamWriter) -> None:
    """Client to pod: the data stream's frames, then EOF when the client's side ends."""
    with contextlib.suppress(ConnectionError, OSError):
        while (chunk := await inbound.get()) is not None:
            writer.write(chunk)
            await writer.drain()
        writer.write_eof()
