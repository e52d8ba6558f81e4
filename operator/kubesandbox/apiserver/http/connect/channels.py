"""The WebSocket channel protocols of exec, attach and port-forward (pure).

Each message starts with its channel: a byte (`v5.channel.k8s.io`, `v4.channel.k8s.io`), or
an ASCII digit with base64 data (`v4.base64.channel.k8s.io`). For exec and attach, channels
0-4 are stdin, stdout, stderr, error (a JSON `Status` once the command ended, with its exit
code) and resize (JSON `{"Width": W, "Height": H}`); v5 adds the close signal `[255, c]`,
the client's end of channel c (stdin's EOF). For port-forward, port i of the `ports` query
has data channel 2i and error channel 2i+1, and the first message on each is the port
number (2 bytes, little-endian).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass

from kubesandbox.objects import Obj

STDIN, STDOUT, STDERR, ERROR, RESIZE = range(5)
CLOSE = 255
V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
V4_BASE64 = "v4.base64.channel.k8s.io"
REMOTE_COMMAND = (V5, V4, V4_BASE64)
"""What exec and attach speak (kubectl 1.33 asks for v5 only, the Python client v5 or v4)."""
PORT_FORWARD = (V4, V4_BASE64)
"""What port-forward speaks over plain WebSocket channels (the Python client)."""


def choose(offered: Sequence[str], supported: Sequence[str]) -> str | None:
    """The first protocol the client offers that is supported, as kube's handshake picks."""
    return next((p for p in offered if p in supported), None)


def offered(header: str) -> list[str]:
    """The protocols of a `Sec-WebSocket-Protocol` header."""
    return [p.strip() for p in header.split(",") if p.strip()]


@dataclass(frozen=True)
class Codec:
    """Messages of one negotiated channel protocol."""

    protocol: str

    @property
    def text(self) -> bool:
        """Whether messages are text frames (base64 protocols)."""
        return "base64" in self.protocol

    def encode(self, channel: int, data: bytes) -> bytes | str:
        """A message carrying `data` on `channel`."""
        if self.text:
            return str(channel) + base64.b64encode(data).decode()
        return bytes([channel]) + data

    def decode(self, message: bytes | str) -> tuple[int, bytes]:
        """(channel, data) of a client message, text or binary frame alike (the Python
        client sends stdin as text frames); raises ValueError when malformed."""
        if not message:
            raise ValueError("empty message")
        if self.text:
            text = message if isinstance(message, str) else message.decode()
            return int(text[0]), base64.b64decode(text[1:], validate=True)
        raw = message.encode() if isinstance(message, str) else message
        return raw[0], raw[1:]

    def closed(self, channel: int, data: bytes) -> int | None:
        """The channel a v5 close signal ends, else None."""
        if self.protocol == V5 and channel == CLOSE and data:
            return data[0]
        return None


def success() -> Obj:
    """The error channel's Status of a command that exited 0."""
    return {"metadata": {}, "status": "Success"}


def exit_status(code: int) -> Obj:
    """The error channel's Status of a command's exit: its code as the ExitCode cause, which
    kubectl and the Python client turn into their own exit code."""
    if code == 0:
        return success()
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: exit status {code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def failure(message: str) -> Obj:
    """The error channel's Status of a command that could not run."""
    return {
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "InternalError",
        "details": {"causes": [{"message": message}]},
        "code": 500,
    }


def encode_status(status: Obj) -> bytes:
    """A Status as the error channel carries it."""
    return json.dumps(status, separators=(",", ":")).encode()


def resize(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a resize message, None when malformed."""
    try:
        size = json.loads(data)
        return int(size["Width"]), int(size["Height"])
    except (ValueError, TypeError, KeyError):
        return None


def port_frame(port: int) -> bytes:
    """The first message of a port-forward channel: its port, little-endian."""
    return port.to_bytes(2, "little")


def forward_ports(values: Sequence[str]) -> list[int]:
    """The ports of the `ports` query parameter (`8080,9090`, or repeated); raises
    ValueError naming the parameter."""
    ports = []
    for value in values:
        for part in value.split(","):
            if not part.strip().isdigit() or not 0 < int(part) < 65536:
                raise ValueError(f'query parameter "ports": {part!r} is not a port (1-65535)')
            ports.append(int(part))
    if not ports:
        raise ValueError('query parameter "ports" is required')
    if len(set(ports)) != len(ports):
        raise ValueError(f'query parameter "ports": duplicate ports in {",".join(values)}')
    return ports
