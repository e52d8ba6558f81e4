"""OpenAI-compatible `/v1/models` and `/v1/completions` (one choice per prompt), and the
request checks `/v1/chat/completions` shares with them.

Requests are checked field by field against what this server implements: an unknown field
or an unsupported value (`stream: true`, `n: 2`) is a 400 naming it in `param`, never
silently ignored. Errors use OpenAI's `{"error": {"message", "type", "param", "code"}}`.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bigmodel.serving.errors import invalid
from bigmodel.serving.generation import Generation, Sampling
from bigmodel.serving.model import ServedModel, Tokenizer
from bigmodel.serving.state import STATE, read_json, run
from bigmodel.serving.streaming import StreamOptions, stream_completion
from bigmodel.serving.validation import field, is_kind, json_object, shown

DEFAULT_MAX_TOKENS = 16  # OpenAI's default
MAX_STOP_SEQUENCES = 4
# Accepted only at the value that means "off": this server does not implement them.
_ONLY_DEFAULT: dict[str, Any] = {
    "n": 1, "best_of": 1, "echo": False, "logprobs": None, "suffix": None,
    "frequency_penalty": 0, "presence_penalty": 0, "logit_bias": None,
}  # fmt: skip
_IMPLEMENTED = {
    "model", "prompt", "max_tokens", "temperature", "top_p", "seed", "stop", "user", "stream",
    "stream_options",
}  # fmt: skip


@dataclass(frozen=True)
class CompletionRequest:
    """A checked `/v1/completions` request: token ids per prompt and how to sample."""

    model: str
    prompts: list[list[int]]
    sampling: Sampling
    stream: StreamOptions | None


def _is_default(value: Any, default: Any) -> bool:
    """Whether `value` means "off" for a field this server does not implement."""
    if value is None or (default is None and value == {}):
        return True
    if isinstance(default, bool):
        return value is default
    return is_kind(value, "number") and value == default


def _prompts(
    body: dict[str, Any], tokenizer: Tokenizer, context: int, most: int
) -> list[list[int]]:
    raw = body.get("prompt")
    texts = [raw] if isinstance(raw, str) else raw
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise invalid("prompt", f"must be a string or an array of strings, got {shown(raw)}")
    if len(texts) > most:
        raise invalid("prompt", f"{len(texts)} prompts are above max batch size {most}")
    prompts = []
    for text in texts:
        if not text:
            raise invalid("prompt", "must not be empty (this model has no start token)")
        try:
            ids = tokenizer.encode(text)
        except ValueError as error:
            raise invalid("prompt", str(error)) from None
        if len(ids) > context:
            raise invalid("prompt", f"{len(ids)} tokens are above the context of {context}")
        prompts.append(ids)
    return prompts


def _stop(body: dict[str, Any]) -> tuple[str, ...]:
    raw = body.get("stop")
    stops = [] if raw is None else [raw] if isinstance(raw, str) else raw
    if (
        not isinstance(stops, list)
        or len(stops) > MAX_STOP_SEQUENCES
        or not all(isinstance(s, str) and s for s in stops)
    ):
        raise invalid("stop", f"must be a string or up to 4 non-empty strings, got {shown(raw)}")
    return tuple(stops)


def check_fields(body: dict[str, Any], only_default: dict[str, Any], implemented: set[str]) -> None:
    """400 naming the first field this server does not implement (or not at that value)."""
    for key, value in body.items():
        if key in only_default:
            if not _is_default(value, default := only_default[key]):
                raise invalid(key, f"only {shown(default)} is supported, got {shown(value)}")
        elif key not in implemented:
            raise invalid(key, "is not a recognized request argument")


def parse_sampling(
    body: dict[str, Any],
    served: ServedModel,
    longest_prompt: int,
    max_tokens: int,
    *,
    key: str = "max_tokens",
    default: int | None = DEFAULT_MAX_TOKENS,
) -> Sampling:
    """How to sample; a model with a KV cache keeps prompt plus answer within its context.

    `default` None: as many tokens as fit (the server's limit and the context allowing).
    """
    fixed_context = served.decoder is not None
    room = served.context_length - longest_prompt if fixed_context else max_tokens
    if fixed_context and room < 1:
        raise invalid("prompt", f"{longest_prompt} tokens fill the context of "
                      f"{served.context_length}: no room for an answer")  # fmt: skip
    count = field(body, key, "integer", key, min(room, max_tokens) if default is None else default)
    if not 1 <= count <= max_tokens:
        raise invalid(key, f"must be between 1 and {max_tokens}, got {count}")
    if count > room:
        raise invalid(key, f"{longest_prompt} prompt tokens plus {count} exceed the model's "
                      f"context of {served.context_length} tokens")  # fmt: skip
    temperature = field(body, "temperature", "number", "temperature", 1.0)
    if not 0 <= temperature <= 2:
        raise invalid("temperature", f"must be between 0 and 2, got {temperature}")
    top_p = field(body, "top_p", "number", "top_p", 1.0)
    if not 0 < top_p <= 1:
        raise invalid("top_p", f"must be in (0, 1], got {top_p}")
    seed = field(body, "seed", "integer", "seed", None)
    field(body, "user", "string", "user", "")
    return Sampling(count, float(temperature), float(top_p), _stop(body), seed)


def parse_stream(body: dict[str, Any]) -> StreamOptions | None:
    """`stream` and `stream_options.include_usage`: None when the answer is not streamed."""
    stream = field(body, "stream", "boolean", "stream", False)
    options = field(body, "stream_options", "object", "stream_options", {})
    if options and not stream:
        raise invalid("stream_options", "is only allowed with stream: true")
    for key in options:
        if key != "include_usage":
            raise invalid(f"stream_options.{key}", "is not a recognized stream option")
    usage = field(options, "include_usage", "boolean", "stream_options.include_usage", False)
    return StreamOptions(include_usage=usage) if stream else None


def parse_completion(
    body: dict[str, Any], served: ServedModel, max_batch_size: int, max_tokens: int
) -> CompletionRequest:
    """A `/v1/completions` body checked against the model and the server's limits."""
    check_fields(body, _ONLY_DEFAULT, _IMPLEMENTED)
    model = field(body, "model", "string", "model")
    if served.tokenizer is None:
        raise invalid("model", f"model {model!r} has no tokenizer: use /v2/models/{model}/infer")
    prompts = _prompts(body, served.tokenizer, served.context_length, max_batch_size)
    sampling = parse_sampling(body, served, max(map(len, prompts)), max_tokens)
    return CompletionRequest(model, prompts, sampling, parse_stream(body))


async def models(request: web.Request) -> web.Response:
    """`GET /v1/models`: the served model."""
    name = request.app[STATE].config.model_name
    return web.json_response({"object": "list", "data": [_model_card(name)]})


async def one_model(request: web.Request) -> web.Response:
    """`GET /v1/models/{model}`."""
    state = request.app[STATE]
    name = request.match_info["model"]
    if name != state.config.model_name:
        raise state.not_found(name, "model")
    return web.json_response(_model_card(name))


def _model_card(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "bigmodel"}


async def completions(request: web.Request) -> web.StreamResponse:
    """`POST /v1/completions`: generate, batched step by step with other requests."""
    state = request.app[STATE]
    body = json_object(await read_json(request))
    served, batcher = state.admit(field(body, "model", "string", "model"), "model")
    config = state.config
    parsed = parse_completion(body, served, config.max_batch_size, config.max_completion_tokens)
    assert served.tokenizer is not None
    work = Generation(parsed.prompts, parsed.sampling, served.tokenizer, served.eos_token_id)
    head = {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion",
            "created": int(time.time()), "model": parsed.model}  # fmt: skip
    if parsed.stream is not None:
        return await stream_completion(request, batcher, work, head, parsed.stream)
    await run(batcher, work)
    work.record(state.metrics)
    return web.json_response({
        **head,
        "choices": [
            {"text": row.text, "index": i, "logprobs": None, "finish_reason": row.finish_reason}
            for i, row in enumerate(work.items)
        ],
        "usage": work.usage(),
    })  # fmt: skip


def add_routes(app: web.Application) -> None:
    """Register the OpenAI-compatible routes."""
    app.router.add_get("/v1/models", models)
    app.router.add_get("/v1/models/{model}", one_model)
    app.router.add_post("/v1/completions", completions, name="completions")
