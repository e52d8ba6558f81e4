"""`"stream": true`: server-sent events in OpenAI's chunk format, for chat and completions."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp import ClientResponse

from support.llm import LLM, llm_config
from support.serving import serving, until

pytest.importorskip("transformers", reason="needs the llm extra: pip install -e '.[llm]'")

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
HELLO = [{"role": "user", "content": "Hello"}]


async def events(response: ClientResponse) -> list[Any]:
    """The `data:` payloads of a whole stream, JSON decoded except `[DONE]`."""
    text = await response.text()
    assert text.endswith("\n\n")
    payloads = [block.removeprefix("data: ") for block in text.strip().split("\n\n")]
    return [p if p == "[DONE]" else json.loads(p) for p in payloads]


async def test_a_streamed_chat_sends_the_role_then_content_then_the_finish_and_done() -> None:
    request = {"model": LLM, "messages": HELLO, "max_tokens": 6, "stream": True, "seed": 1}
    async with serving(llm_config()) as s:
        response = await s.client.post(CHAT, json=request)
        chunks = await events(response)
        whole = await (await s.client.post(CHAT, json={**request, "stream": False})).json()
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert chunks[-1] == "[DONE]"
    body = chunks[:-1]
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == body[0]["id"] for c in body)
    assert body[0]["choices"][0]["delta"]["role"] == "assistant"
    assert [c["choices"][0]["finish_reason"] for c in body][-1] == "length"
    assert all(c["choices"][0]["finish_reason"] is None for c in body[:-1])
    assert "usage" not in body[0]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in body)
    assert text == whole["choices"][0]["message"]["content"]


async def test_with_include_usage_a_last_chunk_without_choices_carries_the_usage() -> None:
    request = {"model": LLM, "messages": HELLO, "max_tokens": 4, "stream": True,
               "stream_options": {"include_usage": True}}  # fmt: skip
    async with serving(llm_config()) as s:
        chunks = await events(await s.client.post(CHAT, json=request))
    *body, last, done = chunks
    assert done == "[DONE]"
    assert all(c["usage"] is None for c in body)
    assert last["choices"] == [] and last["usage"]["completion_tokens"] <= 4
    assert last["usage"]["total_tokens"] == sum(
        last["usage"][k] for k in ("prompt_tokens", "completion_tokens")
    )


async def test_a_streamed_completion_holds_back_text_until_a_stop_sequence_is_ruled_out() -> None:
    request = {"model": LLM, "prompt": "Hello", "max_tokens": 16, "temperature": 0}
    async with serving(llm_config()) as s:
        full = (await (await s.client.post(COMPLETIONS, json=request)).json())["choices"][0]
        stop = full["text"][4:7]
        stopped = {**request, "stop": [stop]}
        whole = await (await s.client.post(COMPLETIONS, json=stopped)).json()
        chunks = await events(await s.client.post(COMPLETIONS, json={**stopped, "stream": True}))
    assert all(c["object"] == "text_completion" for c in chunks[:-1])
    streamed = "".join(c["choices"][0]["text"] for c in chunks[:-1])
    assert streamed == whole["choices"][0]["text"] == full["text"][: full["text"].index(stop)]
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"


async def test_each_prompt_of_a_streamed_completion_streams_under_its_own_index() -> None:
    request = {"model": LLM, "prompt": ["Hello", "The"], "max_tokens": 3, "stream": True}
    async with serving(llm_config()) as s:
        chunks = await events(await s.client.post(COMPLETIONS, json=request))
    finished = [c["choices"][0]["index"] for c in chunks[:-1] if c["choices"][0]["finish_reason"]]
    assert sorted(finished) == [0, 1]


async def test_a_client_that_goes_away_frees_its_slot_and_stops_its_generation() -> None:
    request = {"model": LLM, "messages": HELLO, "max_tokens": 480, "stream": True}
    async with serving(llm_config()) as s:
        response = await s.client.post(CHAT, json=request)
        await response.content.readline()  # the first chunk: it runs
        release = await s.occupy_device()
        response.close()
        release.set()
        batcher = s.state.batcher
        assert batcher is not None
        await until(lambda: batcher.running == 0 and batcher.queued == 0)
        metrics = await s.metrics()
    assert metrics["bigmodel_serving_requests_running"] == 0
    assert 0 < metrics["bigmodel_serving_generation_tokens_total"] < 240
