"""OpenAI-compatible `/v1/models` and `/v1/completions` (no streaming, one choice per prompt).

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
from bigmodel.serving.validation import field, is_kind, json_object, shown

DEFAULT_MAX_TOKENS = 16  # OpenAI's default
MAX_STOP_SEQUENCES = 4
# Accepted only at the value that means "off": this server does not implement them.
_ONLY_DEFAULT: dict[str, Any] = {
    "n": 1, "best_of": 1, "stream": False, "echo": False, "logprobs": None, "suffix": None,
    "frequency_penalty": 0, "presence_penalty": 0, "logit_bias": None,
}  # fmt: skip
_IMPLEMENTED = {"model", "prompt", "max_tokens", "temperature", "top_p", "seed", "stop", "user"}


@dataclass(frozen=True)
class CompletionRequest:
    """A checked `/v1/completions` request: token ids per prompt and how to sample."""

    model: str
    prompts: list[list[int]]
    sampling: Sampling


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


def parse_completion(
    body: dict[str, Any], served: ServedModel, max_batch_size: int, max_tokens: int
) -> CompletionRequest:
    """A `/v1/completions` body checked against the model and the server's limits."""
    for key, value in body.items():
        if key in _ONLY_DEFAULT:
            if not _is_default(value, default := _ONLY_DEFAULT[key]):
                raise invalid(key, f"only {shown(default)} is supported, got {shown(value)}")
        elif key not in _IMPLEMENTED:
            raise invalid(key, "is not a recognized request argument")
    model = field(body, "model", "string", "model")
    if served.tokenizer is None:
        raise invalid("model", f"model {model!r} has no tokenizer: use /v2/models/{model}/infer")
    prompts = _prompts(body, served.tokenizer, served.context_length, max_batch_size)
    count = field(body, "max_tokens", "integer", "max_tokens", DEFAULT_MAX_TOKENS)
    if not 1 <= count <= max_tokens:
        raise invalid("max_tokens", f"must be between 1 and {max_tokens}, got {count}")
    temperature = field(body, "temperature", "number", "temperature", 1.0)
    if not 0 <= temperature <= 2:
        raise invalid("temperature", f"must be between 0 and 2, got {temperature}")
    top_p = field(body, "top_p", "number", "top_p", 1.0)
    if not 0 < top_p <= 1:
        raise invalid("top_p", f"must be in (0, 1], got {top_p}")
    seed = field(body, "seed", "integer", "seed", None)
    field(body, "user", "string", "user", "")
    sampling = Sampling(count, float(temperature), float(top_p), _stop(body), seed)
    return CompletionRequest(model, prompts, sampling)


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


async def completions(request: web.Request) -> web.Response:
    """`POST /v1/completions`: generate, batched step by step with other requests."""
    state = request.app[STATE]
    body = json_object(await read_json(request))
    served, batcher = state.admit(field(body, "model", "string", "model"), "model")
    config = state.config
    parsed = parse_completion(body, served, config.max_batch_size, config.max_completion_tokens)
    assert served.tokenizer is not None
    work = Generation(parsed.prompts, parsed.sampling, served.tokenizer, served.eos_token_id)
    await run(batcher, work)
    prompt_tokens = sum(len(row.prompt) for row in work.items)
    completion_tokens = sum(len(row.generated) for row in work.items)
    return web.json_response({
        "id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion", "created": int(time.time()),
        "model": parsed.model,
        "choices": [
            {"text": row.text, "index": i, "logprobs": None, "finish_reason": row.finish_reason}
            for i, row in enumerate(work.items)
        ],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    })  # fmt: skip


def add_routes(app: web.Application) -> None:
    """Register the OpenAI-compatible routes."""
    app.router.add_get("/v1/models", models)
    app.router.add_get("/v1/models/{model}", one_model)
    app.router.add_post("/v1/completions", completions, name="completions")
