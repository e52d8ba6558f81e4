"""OpenAI-compatible `POST /v1/chat/completions`: messages through the tokenizer's chat template.

One choice per request; `max_completion_tokens` (or the older `max_tokens`), `temperature`,
`top_p`, `stop`, `seed`, `stream` and `stream_options` as for completions. Messages are
`{"role", "content"}` with a role of `system`, `developer` (rendered as `system`), `user` or
`assistant`, and content a string or an array of text parts. A role, a part or a field this
server does not implement is a 400 naming it, as is a model whose tokenizer has no template.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bigmodel.serving.errors import invalid
from bigmodel.serving.generation import Generation, Sampling
from bigmodel.serving.model import ChatTokenizer, ServedModel
from bigmodel.serving.openai_compat import check_fields, parse_sampling, parse_stream
from bigmodel.serving.state import STATE, read_json, run
from bigmodel.serving.streaming import StreamOptions, chat_choice, stream_completion
from bigmodel.serving.validation import field, json_object, shown

ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
"""Accepted roles and the role the chat template sees."""
_ONLY_DEFAULT: dict[str, Any] = {
    "n": 1, "logprobs": False, "top_logprobs": None, "frequency_penalty": 0,
    "presence_penalty": 0, "logit_bias": None, "tools": None, "tool_choice": None,
    "parallel_tool_calls": None, "response_format": None, "store": False, "metadata": None,
}  # fmt: skip
_IMPLEMENTED = {
    "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "seed",
    "stop", "user", "stream", "stream_options",
}  # fmt: skip


@dataclass(frozen=True)
class ChatRequest:
    """A checked chat request: the rendered prompt's token ids and how to sample."""

    model: str
    prompt: list[int]
    sampling: Sampling
    stream: StreamOptions | None


def _content(message: dict[str, Any], path: str) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise invalid(
            f"{path}.content", f"must be a string or an array of parts, got {shown(content)}"
        )
    texts = []
    for j, part in enumerate(content):
        if not isinstance(part, dict) or part.get("type") != "text":
            raise invalid(
                f"{path}.content[{j}]", f"only text parts are supported, got {shown(part)}"
            )
        texts.append(field(part, "text", "string", f"{path}.content[{j}].text"))
    return "".join(texts)


def parse_messages(body: dict[str, Any]) -> list[dict[str, str]]:
    """`messages` as the chat template takes them: role and text content each."""
    raw = field(body, "messages", "array", "messages")
    if not raw:
        raise invalid("messages", "must hold at least one message")
    messages = []
    for i, message in enumerate(raw):
        path = f"messages[{i}]"
        if not isinstance(message, dict):
            raise invalid(path, f"must be an object, got {shown(message)}")
        role = field(message, "role", "string", f"{path}.role")
        if role not in ROLES:
            raise invalid(f"{path}.role", f"must be one of {', '.join(ROLES)}, got {role!r}")
        for key in message:
            if key not in ("role", "content", "name"):
                raise invalid(f"{path}.{key}", "is not supported by this server")
        messages.append({"role": ROLES[role], "content": _content(message, path)})
    return messages


def parse_chat(body: dict[str, Any], served: ServedModel, max_tokens: int) -> ChatRequest:
    """A `/v1/chat/completions` body checked against the model and the server's limits."""
    check_fields(body, _ONLY_DEFAULT, _IMPLEMENTED)
    model = field(body, "model", "string", "model")
    if not isinstance(served.tokenizer, ChatTokenizer):
        raise invalid("model", f"model {model!r} has no chat template: use /v1/completions")
    messages = parse_messages(body)
    try:
        prompt = served.tokenizer.encode_chat(messages)
    except ValueError as error:
        raise invalid("messages", str(error)) from None
    if len(prompt) > served.context_length:
        raise invalid("messages", f"{len(prompt)} tokens are above the context of "
                      f"{served.context_length}")  # fmt: skip
    key = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
    sampling = parse_sampling(body, served, len(prompt), max_tokens, key=key, default=None)
    return ChatRequest(model, prompt, sampling, parse_stream(body))


async def chat_completions(request: web.Request) -> web.StreamResponse:
    """`POST /v1/chat/completions`: one answer, whole or streamed."""
    state = request.app[STATE]
    body = json_object(await read_json(request))
    served, batcher = state.admit(field(body, "model", "string", "model"), "model")
    parsed = parse_chat(body, served, state.config.max_completion_tokens)
    assert served.tokenizer is not None
    work = Generation([parsed.prompt], parsed.sampling, served.tokenizer, served.eos_token_id)
    head = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()),
            "model": parsed.model}  # fmt: skip
    if parsed.stream is not None:
        chunk_head = {**head, "object": "chat.completion.chunk"}
        return await stream_completion(
            request, batcher, work, chunk_head, parsed.stream, chat_choice
        )
    await run(batcher, work)
    work.record(state.metrics)
    row = work.items[0]
    return web.json_response({
        **head, "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": row.text},
                     "logprobs": None, "finish_reason": row.finish_reason}],
        "usage": work.usage(),
    })  # fmt: skip


def add_routes(app: web.Application) -> None:
    """Register the chat route."""
    app.router.add_post("/v1/chat/completions", chat_completions, name="chat")
