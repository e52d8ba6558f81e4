"""`POST /v1/chat/completions` over HTTP, against the real application and the tiny HF model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from support.llm import LLM, llm_config, tiny_lm_dir
from support.serving import MODEL, serving

pytest.importorskip("transformers", reason="needs the llm extra: pip install -e '.[llm]'")

CHAT = "/v1/chat/completions"
HELLO = [{"role": "user", "content": "Hello"}]


def chat(messages: Any = HELLO, **fields: Any) -> dict[str, Any]:
    return {"model": LLM, "messages": messages, **fields}


async def test_a_chat_answer_is_openais_chat_completion_object() -> None:
    async with serving(llm_config()) as s:
        response = await s.client.post(CHAT, json=chat(max_tokens=5, temperature=0))
        body = await response.json()
    assert response.status == 200
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    [choice] = body["choices"]
    assert choice["message"]["role"] == "assistant" and choice["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 5


async def test_the_prompt_is_the_tokenizers_chat_template_with_the_answer_header() -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_lm_dir())
    messages = [{"role": "system", "content": "Be brief."}, *HELLO]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    async with serving(llm_config()) as s:
        body = await (await s.client.post(CHAT, json=chat(messages, max_tokens=1))).json()
    assert body["usage"]["prompt_tokens"] == len(tokenizer.encode(text, add_special_tokens=False))


async def test_max_completion_tokens_is_the_newer_name_of_max_tokens() -> None:
    async with serving(llm_config()) as s:
        body = await (await s.client.post(CHAT, json=chat(max_completion_tokens=3))).json()
    assert body["usage"]["completion_tokens"] <= 3


async def test_the_same_seed_gives_the_same_sampled_answer() -> None:
    request = chat(max_tokens=8, temperature=1.0, seed=11)
    async with serving(llm_config()) as s:
        first = await (await s.client.post(CHAT, json=request)).json()
        again = await (await s.client.post(CHAT, json=request)).json()
    assert first["choices"][0]["message"] == again["choices"][0]["message"]


async def test_without_max_tokens_the_answer_may_fill_the_context() -> None:
    async with serving(llm_config("--max-completion-tokens", "4")) as s:
        body = await (await s.client.post(CHAT, json=chat(temperature=0))).json()
    assert body["usage"]["completion_tokens"] <= 4


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        (chat([]), "messages", "at least one message"),
        (chat("hi"), "messages", "must be an array"),
        (chat([{"role": "robot", "content": "hi"}]), "messages[0].role", "must be one of"),
        (chat([{"content": "hi"}]), "messages[0].role", "is required"),
        (chat([{"role": "user", "content": 3}]), "messages[0].content", "string or an array"),
        (chat([{"role": "user", "content": [{"type": "image_url"}]}]), "messages[0].content[0]",
         "only text parts"),
        (chat([{"role": "user", "content": "hi", "tool_calls": []}]), "messages[0].tool_calls",
         "not supported"),
        (chat([{"role": "user", "content": "word " * 600}]), "messages", "above the context"),
        (chat(max_tokens=600), "max_tokens", "exceed the model's context"),
        (chat(max_completion_tokens=0), "max_completion_tokens", "between 1 and"),
        (chat(n=2), "n", "only 1 is supported"),
        (chat(tools=[{"type": "function"}]), "tools", "only null"),
        (chat(stream_options={"include_usage": True}), "stream_options", "stream: true"),
        (chat(temprature=0), "temprature", "not a recognized request argument"),
    ],
)  # fmt: skip
async def test_a_bad_chat_request_is_a_400_naming_the_field(
    body: dict[str, Any], param: str, words: str
) -> None:
    async with serving(llm_config()) as s:
        response = await s.client.post(CHAT, json=body)
        error = (await response.json())["error"]
    assert response.status == 400
    assert error["param"] == param and error["type"] == "invalid_request_error"
    assert words in error["message"], error["message"]


async def test_a_model_without_a_chat_template_is_a_400_naming_the_model() -> None:
    async with serving() as s:  # the character model: a tokenizer, no template
        response = await s.client.post(CHAT, json={"model": MODEL, "messages": HELLO})
        error = (await response.json())["error"]
    assert response.status == 400 and error["param"] == "model"
    assert "has no chat template" in error["message"]


async def test_a_hugging_face_tokenizer_without_a_template_is_a_400_naming_messages(
    tmp_path: Path,
) -> None:
    model = shutil.copytree(tiny_lm_dir(), tmp_path / "model")
    (model / "chat_template.jinja").unlink()
    config = json.loads((model / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (model / "tokenizer_config.json").write_text(json.dumps(config))
    async with serving(llm_config(model_uri=str(model))) as s:
        response = await s.client.post(CHAT, json=chat())
        error = (await response.json())["error"]
    assert response.status == 400 and error["param"] == "messages"
    assert "no chat template" in error["message"]
