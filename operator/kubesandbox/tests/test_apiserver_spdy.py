"""SPDY/3.1 framing as kubectl's port-forward speaks it: frames from a byte stream fed in
any pieces, header blocks compressed with the protocol's dictionary, the frames a server
sends."""

from __future__ import annotations

import struct
import zlib

import pytest

from kubesandbox.apiserver.http.connect import spdy


def client_syn_stream(stream_id: int, block: bytes) -> bytes:
    """A SYN_STREAM as a client writes it (stream id, associated id, priority, slot)."""
    payload = struct.pack(">IIBB", stream_id, 0, 0, 0) + block
    return struct.pack(">HHI", 0x8003, spdy.SYN_STREAM, len(payload)) + payload


def client_block(compressor: zlib._Compress, headers: dict[str, str]) -> bytes:
    raw = struct.pack(">I", len(headers))
    for name, value in headers.items():
        raw += struct.pack(">I", len(name)) + name.encode()
        raw += struct.pack(">I", len(value)) + value.encode()
    return compressor.compress(raw) + compressor.flush(zlib.Z_SYNC_FLUSH)


def test_the_dictionary_is_spdy3s() -> None:
    # zlib names a preset dictionary by its Adler-32: a wrong byte and no peer can inflate
    assert (len(spdy.DICTIONARY), zlib.adler32(spdy.DICTIONARY)) == (1423, 0xE3C6A7C2)


def test_frames_are_read_from_pieces_of_any_size() -> None:
    stream = spdy.data(3, b"hello", fin=True) + spdy.ping(b"\x00\x00\x00\x01")
    reader, frames = spdy.FrameReader(), []
    for byte in stream:
        frames += reader.feed(bytes([byte]))
    assert frames == [
        spdy.Data(3, spdy.FLAG_FIN, b"hello"),
        spdy.Control(spdy.PING, 0, b"\x00\x00\x00\x01"),
    ]
    assert frames[0].fin  # type: ignore[union-attr]


def test_another_version_is_a_protocol_error() -> None:
    with pytest.raises(spdy.ProtocolError):
        spdy.FrameReader().feed(struct.pack(">HHI", 0x8002, spdy.PING, 4) + b"\0\0\0\1")


def test_a_clients_successive_header_blocks_decode() -> None:
    compressor = zlib.compressobj(zdict=spdy.DICTIONARY)
    blocks = spdy.HeaderBlocks()
    reader = spdy.FrameReader()
    for stream_id, kind in ((1, "error"), (3, "data")):
        headers = {"streamtype": kind, "port": "8080", "requestid": "0"}
        [frame] = reader.feed(client_syn_stream(stream_id, client_block(compressor, headers)))
        assert isinstance(frame, spdy.Control)
        got_id, block = spdy.syn_stream(frame)
        assert (got_id, blocks.decode(block)) == (stream_id, headers)


def test_a_servers_header_blocks_inflate_in_one_zlib_stream() -> None:
    blocks = spdy.HeaderBlocks()
    inflate = zlib.decompressobj(zdict=spdy.DICTIONARY)
    for headers in ({}, {"Port": "80"}):
        [frame] = spdy.FrameReader().feed(spdy.syn_reply(5, blocks.encode(headers)))
        assert isinstance(frame, spdy.Control) and frame.type == spdy.SYN_REPLY
        assert struct.unpack_from(">I", frame.payload) == (5,)
        raw = inflate.decompress(frame.payload[4:])
        assert struct.unpack_from(">I", raw) == (len(headers),)
        assert b"port" in raw or not headers  # names go lower-case


def test_a_bad_header_block_is_a_protocol_error() -> None:
    with pytest.raises(spdy.ProtocolError):
        spdy.HeaderBlocks().decode(b"not zlib")


def test_stream_ending_frames() -> None:
    [reset] = spdy.FrameReader().feed(spdy.rst_stream(7, spdy.CANCEL))
    assert isinstance(reset, spdy.Control) and spdy.stream_of(reset) == 7
    [away] = spdy.FrameReader().feed(spdy.goaway(9))
    assert isinstance(away, spdy.Control) and away.payload == struct.pack(">II", 9, 0)
