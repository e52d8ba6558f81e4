"""The WebSocket channel protocols of exec, attach and port-forward: channel bytes, base64
variants, the v5 close signal, the error channel's Status, port frames and the `ports`
parameter."""

from __future__ import annotations

import json

import pytest

from kubesandbox.apiserver.http.connect.channels import (
    CLOSE,
    ERROR,
    REMOTE_COMMAND,
    STDIN,
    STDOUT,
    V4,
    V4_BASE64,
    V5,
    Codec,
    choose,
    exit_status,
    forward_ports,
    offered,
    port_frame,
    resize,
)


def test_the_first_protocol_the_client_offers_and_we_speak_is_chosen() -> None:
    assert choose(offered("v5.channel.k8s.io, v4.channel.k8s.io"), REMOTE_COMMAND) == V5
    assert choose(["channel.k8s.io", V4], REMOTE_COMMAND) == V4
    assert choose(["channel.k8s.io"], REMOTE_COMMAND) is None


def test_binary_messages_lead_with_the_channel_byte() -> None:
    codec = Codec(V5)
    assert codec.encode(STDOUT, b"hi") == b"\x01hi"
    assert codec.decode(b"\x00input") == (STDIN, b"input")


def test_a_text_frame_of_a_binary_protocol_is_read_as_its_bytes() -> None:
    # what the Python client sends on stdin
    assert Codec(V4).decode("\x00hello\n") == (STDIN, b"hello\n")


def test_base64_messages_lead_with_the_channel_digit() -> None:
    codec = Codec(V4_BASE64)
    assert codec.encode(STDOUT, b"hi") == "1aGk="
    assert codec.decode("0aGk=") == (STDIN, b"hi")
    with pytest.raises(ValueError):
        codec.decode("0not base64!")


def test_an_empty_message_is_malformed() -> None:
    with pytest.raises(ValueError):
        Codec(V5).decode(b"")


def test_only_v5_has_the_close_signal() -> None:
    channel, data = Codec(V5).decode(bytes([CLOSE, STDIN]))
    assert Codec(V5).closed(channel, data) == STDIN
    assert Codec(V4).closed(channel, data) is None
    assert Codec(V5).closed(STDIN, b"\x00") is None


def test_exit_code_zero_is_success() -> None:
    assert exit_status(0) == {"metadata": {}, "status": "Success"}


def test_a_non_zero_exit_code_is_the_exit_code_cause_clients_read() -> None:
    status = exit_status(3)
    assert (status["status"], status["reason"]) == ("Failure", "NonZeroExitCode")
    # kubectl takes the cause of reason ExitCode; the Python client the first cause
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
    assert json.loads(json.dumps(status)) == status


def test_resize_messages() -> None:
    assert resize(b'{"Width":120,"Height":40}') == (120, 40)
    assert resize(b"not json") is None
    assert resize(b"{}") is None


def test_port_frames_are_little_endian() -> None:
    assert port_frame(8080) == b"\x90\x1f"
    assert Codec(V4).encode(ERROR, port_frame(8080)) == b"\x03\x90\x1f"


@pytest.mark.parametrize(
    ("values", "ports"),
    [(["8080"], [8080]), (["8080,9090"], [8080, 9090]), (["80", "81"], [80, 81])],
)
def test_forward_ports(values: list[str], ports: list[int]) -> None:
    assert forward_ports(values) == ports


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([], '"ports" is required'),
        (["http"], "'http' is not a port"),
        (["0"], "'0' is not a port"),
        (["70000"], "'70000' is not a port"),
        (["80,80"], "duplicate ports"),
    ],
)
def test_bad_ports_are_refused_naming_the_parameter(values: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        forward_ports(values)
    assert 'query parameter "ports"' in str(raised.value)
