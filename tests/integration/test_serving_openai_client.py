"""The official `openai` Python client, unchanged, against the server serving a HF model."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.llm import LLM, llm_config
from support.serving import ServerThread

pytestmark = pytest.mark.integration
openai = pytest.importorskip("openai", reason="needs the dev extra: pip install -e '.[dev]'")
pytest.importorskip("transformers", reason="needs the llm extra: pip install -e '.[llm]'")

HELLO = [{"role": "user", "content": "Hello"}]


@pytest.fixture(scope="module")
def client() -> Iterator[openai.OpenAI]:
    server = ServerThread(llm_config("--torch-threads", "1")).start()
    try:
        yield openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
    finally:
        server.stop()


def test_the_client_lists_the_served_model(client: openai.OpenAI) -> None:
    assert [model.id for model in client.models.list()] == [LLM]


def test_the_client_gets_a_chat_answer(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(model=LLM, messages=HELLO, max_tokens=6, seed=3)
    assert answer.choices[0].message.role == "assistant"
    assert answer.choices[0].finish_reason in ("length", "stop")
    assert answer.usage is not None and answer.usage.completion_tokens <= 6


def test_the_client_streams_a_chat_answer_with_usage_last(client: openai.OpenAI) -> None:
    request = {"model": LLM, "messages": HELLO, "max_tokens": 6, "seed": 3, "temperature": 0}
    whole = client.chat.completions.create(**request)  # type: ignore[call-overload]
    chunks = list(
        client.chat.completions.create(
            **request, stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert chunks[-1].choices == [] and chunks[-1].usage == whole.usage


def test_the_client_streams_a_completion(client: openai.OpenAI) -> None:
    stream = client.completions.create(
        model=LLM, prompt="The operator", max_tokens=5, stream=True, temperature=0
    )
    chunks = list(stream)
    assert chunks[-1].choices[0].finish_reason in ("length", "stop")
    whole = client.completions.create(model=LLM, prompt="The operator", max_tokens=5, temperature=0)
    assert "".join(c.choices[0].text for c in chunks) == whole.choices[0].text


def test_a_bad_request_is_the_clients_bad_request_error_naming_the_field(
    client: openai.OpenAI,
) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(
            model=LLM,
            messages=[{"role": "tool", "content": "x", "tool_call_id": "1"}],
        )
    assert raised.value.param == "messages[0].role"
