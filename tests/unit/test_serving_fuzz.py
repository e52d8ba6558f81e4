"""Fuzzed request bodies never get a 5xx other than the documented 503 (with Retry-After).

The real server (`serve()`, a tiny model) runs in a thread for the module; hypothesis sends
arbitrary bytes, arbitrary JSON, and near-valid requests of both protocols.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from support.serving import MODEL, ServerThread, make_config

INFER = f"/v2/models/{MODEL}/infer"
COMPLETIONS = "/v1/completions"
FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def mutated(draw: st.DrawFn, body: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    """`body` with up to two of its fields replaced by arbitrary JSON or removed."""
    for key in draw(st.lists(st.sampled_from(keys), max_size=2, unique=True)):
        target: Any = body
        if key.startswith("inputs."):  # a field of the first tensor, if it is still one
            target = body.get("inputs")
            target = target[0] if isinstance(target, list) and target else None
            key = key.removeprefix("inputs.")
        if not isinstance(target, dict):
            continue
        if draw(st.booleans()):
            target.pop(key, None)
        else:
            target[key] = draw(json_values)
    return body


@st.composite
def infer_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """Mostly valid infer requests (some too long or out of vocabulary), then mutated."""
    batch = draw(st.integers(1, 3))
    length = draw(st.integers(1, 18))  # the context is 16
    data = draw(st.lists(st.integers(0, 26), min_size=batch * length, max_size=batch * length))
    if draw(st.booleans()):
        data = [data[i * length : (i + 1) * length] for i in range(batch)]
    tensor = {"name": "input_ids", "datatype": "INT64", "shape": [batch, length], "data": data}
    body = {"inputs": [tensor], "id": "fuzz", "outputs": [{"name": "logits"}]}
    keys = [
        "inputs",
        "id",
        "outputs",
        "inputs.name",
        "inputs.datatype",
        "inputs.shape",
        "inputs.data",
    ]
    return draw(mutated(body, keys))


@st.composite
def completion_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """Mostly valid completion requests (some characters outside the vocabulary), then mutated."""
    prompt = st.text(alphabet="the cat.!", min_size=1, max_size=20)
    body = {
        "model": MODEL,
        "prompt": draw(prompt | st.lists(prompt, min_size=1, max_size=3)),
        "max_tokens": draw(st.integers(1, 8)),
        "temperature": draw(st.floats(0, 2)),
        "top_p": draw(st.floats(0.01, 1)),
        "seed": draw(st.integers(0, 2**63 - 1)),
        "stop": draw(st.lists(st.text(alphabet="the cat.", min_size=1, max_size=3), max_size=4)),
    }
    keys = ["model", "prompt", "max_tokens", "temperature", "top_p", "seed", "stop", "n", "stream"]
    return draw(mutated(body, keys))


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    running = ServerThread(make_config("--max-completion-tokens", "8", "--max-queue-delay-ms", "0"))
    running.start()
    yield running
    running.stop()


def post(server: ServerThread, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.config.port, timeout=30)
    try:
        connection.request("POST", path, body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def assert_answered_without_a_server_error(
    status: int, headers: dict[str, str], body: bytes
) -> None:
    event(f"HTTP {status}")  # --hypothesis-show-statistics shows how many got through
    assert status < 500 or (status == 503 and headers.get("Retry-After") == "1"), body
    if status >= 400:
        assert "error" in json.loads(body)


def encode(body: Any) -> bytes:
    return json.dumps(body).encode()


@FUZZ
@given(path=st.sampled_from([INFER, COMPLETIONS]), body=st.binary(max_size=64))
def test_arbitrary_bytes(server: ServerThread, path: str, body: bytes) -> None:
    assert_answered_without_a_server_error(*post(server, path, body))


@FUZZ
@given(path=st.sampled_from([INFER, COMPLETIONS]), body=json_values)
def test_arbitrary_json(server: ServerThread, path: str, body: Any) -> None:
    assert_answered_without_a_server_error(*post(server, path, encode(body)))


@FUZZ
@given(body=infer_bodies())
def test_near_valid_infer_requests(server: ServerThread, body: dict[str, Any]) -> None:
    assert_answered_without_a_server_error(*post(server, INFER, encode(body)))


@FUZZ
@given(body=completion_bodies())
def test_near_valid_completion_requests(server: ServerThread, body: dict[str, Any]) -> None:
    assert_answered_without_a_server_error(*post(server, COMPLETIONS, encode(body)))
