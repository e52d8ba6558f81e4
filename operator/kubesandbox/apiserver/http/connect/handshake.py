"""What every connect request checks before it upgrades (pure but for the response it
opens): the pod and container it names, and a WebSocket upgrade with a protocol both sides
speak. Refusals are Status errors (400), as kube-apiserver answers them before upgrading:
kubectl then tries its SPDY fallback, which gets the same answer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence

from aiohttp import WSMsgType, web

from kubesandbox.apiserver import errors
from kubesandbox.apiserver.http.connect import channels
from kubesandbox.objects import Obj

UPGRADE_REQUIRED = "Upgrade request required"
FINISHED = ("Succeeded", "Failed")


def container_name(pod: Obj, asked: str | None) -> str:
    """The container a request names (`container`), or the pod's only one."""
    name = pod["metadata"]["name"]
    containers: list[str] = [c["name"] for c in pod.get("spec", {}).get("containers", ())]
    if not asked:
        if len(containers) == 1:
            return containers[0]
        raise errors.bad_request(
            f"a container name must be specified for pod {name}, choose one of: "
            f"[{' '.join(containers)}]"
        )
    if asked not in containers:
        raise errors.bad_request(f"container {asked} is not valid for pod {name}")
    return asked


def require_running(pod: Obj, container: str | None = None) -> None:
    """The pod runs (and so does `container`), as exec, attach and port-forward need."""
    status = pod.get("status") or {}
    phase = status.get("phase")
    if phase in FINISHED:
        raise errors.bad_request(
            f"cannot connect to a container in a completed pod; current phase is {phase}"
        )
    if container is None:
        if phase != "Running":
            raise errors.bad_request(f"unable to upgrade connection: pod is {phase}, not running")
        return
    states = {c["name"]: c.get("state") or {} for c in status.get("containerStatuses") or ()}
    if "running" not in states.get(container, {}):
        why = f'container not found ("{container}")'
        raise errors.bad_request(f"unable to upgrade connection: {why}")


def protocol(request: web.Request, supported: Sequence[str], transports: str) -> str:
    """The subprotocol of a WebSocket upgrade: the first the client offers that we speak."""
    upgrade = request.headers.get("Upgrade", "").lower()
    if upgrade != "websocket":
        if upgrade.startswith("spdy"):
            raise errors.bad_request(
                f"the sandbox serves this over WebSocket only ({transports}); SPDY is not "
                "supported: use kubectl 1.31 or newer, or a client that speaks WebSocket"
            )
        raise errors.bad_request(UPGRADE_REQUIRED)
    offered = channels.offered(request.headers.get("Sec-WebSocket-Protocol", ""))
    chosen = channels.choose(offered, supported)
    if chosen is None:
        raise errors.bad_request(
            f"requested protocol(s) are not supported: {offered}; supports {list(supported)}"
        )
    return chosen


async def upgrade(
    request: web.Request, chosen: str, record: Callable[[web.Request, int], None]
) -> web.WebSocketResponse:
    """Switch to WebSocket with the `chosen` subprotocol; the request is logged now, as a
    stream (it may last long)."""
    ws = web.WebSocketResponse(protocols=(chosen,), compress=False, max_msg_size=0)
    await ws.prepare(request)
    record(request, ws.status)
    return ws


async def send(ws: web.WebSocketResponse, message: bytes | str) -> None:
    """One message: text for the base64 protocols, binary otherwise."""
    if isinstance(message, str):
        await ws.send_str(message)
    else:
        await ws.send_bytes(message)


async def frames(
    ws: web.WebSocketResponse, codec: channels.Codec
) -> AsyncIterator[tuple[int, bytes]]:
    """The client's frames as (channel, data), until it goes; as kube-apiserver, a frame
    that is not data or does not decode is dropped."""
    async for message in ws:
        if message.type not in (WSMsgType.BINARY, WSMsgType.TEXT):
            continue
        try:
            frame = codec.decode(message.data)
        except ValueError:
            continue
        yield frame
