"""`pods/exec` and `pods/attach` over the WebSocket channel protocols (`channels`).

After the upgrade, an exec with a terminal waits briefly for the client's first size, so the
command starts on a terminal of that size (a program reads it once, at start); then an empty
message on the lowest output channel tells the client the streams are open (as the kubelet
does); then stdin, resize and the v5 close signal flow in,
stdout and stderr flow out, and once the output ends the error channel carries the Status
with the exit code and the server closes the connection normally. A client that goes away
ends the session (an exec'd command is killed).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from kubesandbox.apiserver import errors
from kubesandbox.apiserver.http.codec import flag
from kubesandbox.apiserver.http.connect import channels, handshake
from kubesandbox.objects import Obj
from kubesandbox.podstreams import PodStreams, Session, Terminal, Unavailable

FIRST_SIZE_SECONDS = 2.0
"""How long an exec with a terminal waits for the client's first size before its command
starts anyway, on a 0x0 terminal (kubectl sends the size at once; some clients never do)."""
Frame = tuple[int, bytes]


@dataclass(frozen=True)
class Options:
    """What the client asked for (`PodExecOptions` / `PodAttachOptions`)."""

    container: str
    command: tuple[str, ...]
    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool

    def wants(self, channel: int) -> bool:
        """Whether output on `channel` goes to the client."""
        return (channel == channels.STDOUT and self.stdout) or (
            channel == channels.STDERR and self.stderr
        )

    @property
    def first(self) -> int:
        """The lowest channel the server writes: where the opening message goes."""
        if self.stdout:
            return channels.STDOUT
        return channels.STDERR if self.stderr else channels.ERROR


def options(request: web.Request, pod: Obj, kind: str) -> Options:
    """The options of an exec or attach request, checked (400 naming what is wrong)."""
    query = request.query
    command = tuple(query.getall("command", ()))
    if kind == "exec" and not command:
        raise errors.bad_request("you must specify at least 1 command")
    tty = flag(query.get("tty"))
    chosen = Options(
        container=handshake.container_name(pod, query.get("container")),
        command=command,
        stdin=flag(query.get("stdin")),
        stdout=flag(query.get("stdout")),
        stderr=flag(query.get("stderr")) and not tty,  # a terminal merges them
        tty=tty,
    )
    if not (chosen.stdin or chosen.stdout or flag(query.get("stderr"))):
        raise errors.bad_request("you must specify at least 1 of stdin, stdout, stderr")
    return chosen


async def serve(
    request: web.Request,
    kind: str,
    pod: Obj,
    pods: PodStreams,
    record: Callable[[web.Request, int], None],
) -> web.StreamResponse:
    """Answer an exec or attach request: checks, upgrade, then the session's streams."""
    chosen = options(request, pod, kind)
    handshake.require_running(pod, chosen.container)
    supported = channels.REMOTE_COMMAND
    protocol = handshake.protocol(request, supported, ", ".join(supported))
    ws = await handshake.upgrade(request, protocol, record)
    codec = channels.Codec(protocol)
    inbox = _Inbox(ws, codec)

    async def send(channel: int, data: bytes) -> None:
        await handshake.send(ws, codec.encode(channel, data))

    try:
        session = await _open(kind, pod, pods, chosen, inbox)
    except Unavailable as exc:
        await inbox.close()
        await send(channels.ERROR, channels.encode_status(channels.failure(str(exc))))
        await ws.close()
        return ws
    await send(chosen.first, b"")
    inbound = asyncio.create_task(_inbound(inbox, chosen, session))
    outbound = asyncio.create_task(_outbound(chosen, session, send))
    try:
        await asyncio.wait({inbound, outbound}, return_when=asyncio.FIRST_COMPLETED)
        if outbound.done():
            await ws.close()  # a normal closure: the client's streams end
    finally:
        for task in (inbound, outbound):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await task
        await inbox.close()
        await session.stop()
    return ws


class _Inbox:
    """The client's frames, read from the upgrade on (so none waits while the command
    starts), queued in order, ended by None; the first terminal size noted as it passes."""

    def __init__(self, ws: web.WebSocketResponse, codec: channels.Codec) -> None:
        self.codec = codec
        self.frames: asyncio.Queue[Frame | None] = asyncio.Queue()
        self.first_size: asyncio.Future[Terminal] = asyncio.get_running_loop().create_future()
        self.reader = asyncio.create_task(self._read(ws, codec))

    async def _read(self, ws: web.WebSocketResponse, codec: channels.Codec) -> None:
        try:
            async for channel, data in handshake.frames(ws, codec):
                size = channels.resize(data) if channel == channels.RESIZE else None
                if size is not None and not self.first_size.done():
                    self.first_size.set_result(Terminal(*size))
                self.frames.put_nowait((channel, data))
        finally:
            self.frames.put_nowait(None)

    async def terminal(self) -> Terminal:
        """The client's first size, once it came (or the client went), else 0x0 after
        `FIRST_SIZE_SECONDS`."""
        await asyncio.wait(
            (self.first_size, self.reader),
            timeout=FIRST_SIZE_SECONDS,
            return_when=asyncio.FIRST_COMPLETED,
        )
        return self.first_size.result() if self.first_size.done() else Terminal()

    async def close(self) -> None:
        """Stop reading."""
        self.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await self.reader


async def _open(kind: str, pod: Obj, pods: PodStreams, chosen: Options, inbox: _Inbox) -> Session:
    """Start the exec'd command (on a terminal of the client's first size with `tty`), or
    attach to the container; raises `Unavailable`."""
    if kind != "exec":
        return await pods.attach(pod, chosen.container)
    tty = await inbox.terminal() if chosen.tty else None
    return await pods.exec(pod, chosen.container, chosen.command, chosen.stdin, tty)


async def _inbound(inbox: _Inbox, chosen: Options, session: Session) -> None:
    """Client to session: stdin, its end (v5), terminal sizes; returns when the client goes."""
    codec = inbox.codec
    while (frame := await inbox.frames.get()) is not None:
        channel, data = frame
        closed = codec.closed(channel, data)
        if closed == channels.STDIN:
            session.close_stdin()
        elif channel == channels.STDIN and chosen.stdin:
            session.write(data)
        elif channel == channels.RESIZE and (size := channels.resize(data)) is not None:
            session.resize(*size)


async def _outbound(
    chosen: Options, session: Session, send: Callable[[int, bytes], Awaitable[None]]
) -> None:
    """Session to client: its output, then the Status of how it ended."""
    while True:
        channel, data = await session.read()
        if not channel:
            break
        if chosen.wants(channel):
            await send(channel, data)
    code = await session.wait()
    status = channels.success() if code is None else channels.exit_status(code)
    await send(channels.ERROR, channels.encode_status(status))
