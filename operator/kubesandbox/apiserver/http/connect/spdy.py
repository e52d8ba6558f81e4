"""SPDY/3.1 framing, as kubectl's port-forward speaks it (pure, no I/O).

kubectl 1.33 tunnels SPDY/3.1 in a WebSocket (subprotocol `SPDY/3.1+portforward.k8s.io`,
the bytes of the SPDY connection in binary messages). Frames: 8-byte headers, control
frames (version 3, a type, flags, a 24-bit length) and data frames (a 31-bit stream id,
flags, a 24-bit length). Header blocks of SYN_STREAM and SYN_REPLY are name/value pairs
(32-bit counts and lengths) compressed by one zlib stream per direction, primed with the
protocol's dictionary and flushed after each block.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = (
    1, 2, 3, 4, 6, 7, 8, 9,
)  # fmt: skip
FLAG_FIN = 0x01
CANCEL = 5
"""RST_STREAM status: the stream is no longer needed."""
MAX_DATA = 0xFFFFFF
"""The largest payload a frame's 24-bit length allows."""

_WORDS = (
    "options", "head", "post", "put", "delete", "trace", "accept", "accept-charset",
    "accept-encoding", "accept-language", "accept-ranges", "age", "allow", "authorization",
    "cache-control", "connection", "content-base", "content-encoding", "content-language",
    "content-length", "content-location", "content-md5", "content-range", "content-type",
    "date", "etag", "expect", "expires", "from", "host", "if-match", "if-modified-since",
    "if-none-match", "if-range", "if-unmodified-since", "last-modified", "location",
    "max-forwards", "pragma", "proxy-authenticate", "proxy-authorization", "range", "referer",
    "retry-after", "server", "te", "trailer", "transfer-encoding", "upgrade", "user-agent",
    "vary", "via", "warning", "www-authenticate", "method", "get", "status", "200 OK",
    "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive", "origin",
)  # fmt: skip
_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 "
    "Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 "
    "Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, "
    "Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,"
    "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age="
    "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)
DICTIONARY = b"".join(struct.pack(">I", len(w)) + w.encode() for w in _WORDS) + _TAIL.encode()
"""The header compression dictionary of SPDY/3 (each word length-prefixed, then a tail)."""


class ProtocolError(Exception):
    """Bytes that are not SPDY/3.1 as expected."""


@dataclass(frozen=True)
class Control:
    """A control frame: its type, flags and payload."""

    type: int
    flags: int
    payload: bytes


@dataclass(frozen=True)
class Data:
    """A data frame of a stream."""

    stream_id: int
    flags: int
    data: bytes

    @property
    def fin(self) -> bool:
        """The sender's last frame on this stream."""
        return bool(self.flags & FLAG_FIN)


Frame = Control | Data


class FrameReader:
    """Frames out of a byte stream fed in pieces of any size."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        """The frames completed by `data`."""
        self._buffer += data
        frames: list[Frame] = []
        while len(self._buffer) >= 8:
            first, flags_length = struct.unpack(">II", self._buffer[:8])
            length = flags_length & MAX_DATA
            if len(self._buffer) < 8 + length:
                break
            payload = bytes(self._buffer[8 : 8 + length])
            del self._buffer[: 8 + length]
            flags = flags_length >> 24
            if first & 0x80000000:
                version = (first >> 16) & 0x7FFF
                if version != VERSION:
                    raise ProtocolError(f"SPDY version {version}, not {VERSION}")
                frames.append(Control(first & 0xFFFF, flags, payload))
            else:
                frames.append(Data(first, flags, payload))
        return frames


class HeaderBlocks:
    """The name/value header blocks of one connection: one compression context for what we
    send, one for what we receive, both primed with `DICTIONARY`."""

    def __init__(self) -> None:
        self._out = zlib.compressobj(zdict=DICTIONARY)
        self._in = zlib.decompressobj(zdict=DICTIONARY)

    def encode(self, headers: Mapping[str, str]) -> bytes:
        """A compressed block (names lower-cased, as SPDY requires)."""
        raw = struct.pack(">I", len(headers))
        for name, value in headers.items():
            for part in (name.lower().encode(), value.encode()):
                raw += struct.pack(">I", len(part)) + part
        return self._out.compress(raw) + self._out.flush(zlib.Z_SYNC_FLUSH)

    def decode(self, block: bytes) -> dict[str, str]:
        """The headers of a compressed block (several values of a name joined by commas)."""
        try:
            raw = self._in.decompress(block)
            (count,) = struct.unpack_from(">I", raw)
            offset, headers = 4, {}
            for _ in range(count):
                pair = []
                for _ in range(2):
                    (size,) = struct.unpack_from(">I", raw, offset)
                    pair.append(raw[offset + 4 : offset + 4 + size].decode())
                    offset += 4 + size
                headers[pair[0]] = pair[1].replace("\0", ",")
        except (zlib.error, struct.error, UnicodeDecodeError) as exc:
            raise ProtocolError(f"bad header block: {exc}") from exc
        return headers


def syn_stream(frame: Control) -> tuple[int, bytes]:
    """(stream id, header block) of a SYN_STREAM's payload."""
    if len(frame.payload) < 10:
        raise ProtocolError("SYN_STREAM too short")
    (stream_id,) = struct.unpack_from(">I", frame.payload)
    return stream_id & 0x7FFFFFFF, frame.payload[10:]


def stream_of(frame: Control) -> int:
    """The stream id a RST_STREAM (or WINDOW_UPDATE) names."""
    if len(frame.payload) < 4:
        raise ProtocolError("frame too short")
    (stream_id,) = struct.unpack_from(">I", frame.payload)
    return int(stream_id & 0x7FFFFFFF)


def _control(type_: int, flags: int, payload: bytes) -> bytes:
    return struct.pack(">HHI", 0x8000 | VERSION, type_, (flags << 24) | len(payload)) + payload


def syn_reply(stream_id: int, block: bytes, fin: bool = False) -> bytes:
    """A SYN_REPLY accepting a stream."""
    return _control(SYN_REPLY, FLAG_FIN if fin else 0, struct.pack(">I", stream_id) + block)


def rst_stream(stream_id: int, status: int) -> bytes:
    """A RST_STREAM ending a stream abnormally."""
    return _control(RST_STREAM, 0, struct.pack(">II", stream_id, status))


def ping(payload: bytes) -> bytes:
    """A PING answering one (the same 4-byte id)."""
    return _control(PING, 0, payload)


def goaway(last_stream: int) -> bytes:
    """A GOAWAY: no more streams after `last_stream` (status OK)."""
    return _control(GOAWAY, 0, struct.pack(">II", last_stream, 0))


def data(stream_id: int, payload: bytes, fin: bool = False) -> bytes:
    """One data frame (`payload` at most MAX_DATA bytes)."""
    flags = FLAG_FIN if fin else 0
    return struct.pack(">II", stream_id & 0x7FFFFFFF, (flags << 24) | len(payload)) + payload
