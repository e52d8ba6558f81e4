"""`"stream": true`: a generation's text as server-sent events, in OpenAI's chunk format.

After each step the generation took part in, every choice's new text goes out as one
`data: {...}` event; a choice that ends sends its `finish_reason`; with
`stream_options.include_usage` a last chunk with empty `choices` carries `usage` (and every
chunk before it `"usage": null`), then `data: [DONE]`. Text that could still turn out to be
the start of a stop sequence is held back until the next token decides (half a multi-byte
character never reaches the text: `detokenize` holds it back). A client that goes away
withdraws its generation at once: it leaves the running batch before the next step, and its
cache with it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bigmodel.serving.batcher import Batcher
from bigmodel.serving.errors import RequestRefused, openai_body
from bigmodel.serving.forward import ModelWork
from bigmodel.serving.generation import Generation, Row
from bigmodel.serving.state import STATE, enqueue

log = logging.getLogger(__name__)

Choice = Callable[[int, Row, str, bool], dict[str, Any]]
"""A choice of a chunk: (index, row, new text, whether it is the row's first chunk)."""


@dataclass(frozen=True)
class StreamOptions:
    """A streamed answer's options (`stream_options`)."""

    include_usage: bool = False


def _ready(row: Row, longest_stop: int) -> int:
    """How much of the row's text may be sent: all once finished, else what is settled."""
    if row.finish_reason is not None:
        return len(row.text)
    return max(len(row.text) - max(longest_stop - 1, 0), 0)


def completion_choice(index: int, row: Row, text: str, first: bool) -> dict[str, Any]:
    """A `/v1/completions` stream choice."""
    return {"text": text, "index": index, "logprobs": None, "finish_reason": row.finish_reason}


def chat_choice(index: int, row: Row, text: str, first: bool) -> dict[str, Any]:
    """A `/v1/chat/completions` stream choice: the role first, then content, then the end."""
    delta: dict[str, Any] = {"role": "assistant", "content": text} if first else {}
    if text and not first:
        delta = {"content": text}
    return {"index": index, "delta": delta, "logprobs": None, "finish_reason": row.finish_reason}


async def stream_completion(
    request: web.Request,
    batcher: Batcher[ModelWork],
    work: Generation,
    head: dict[str, Any],
    options: StreamOptions,
    choice: Choice = completion_choice,
) -> web.StreamResponse:
    """Queue `work`, then send its text as it comes; the response once the stream ended."""
    future = enqueue(batcher, work)  # refused (503) before any byte is sent
    metrics = request.app[STATE].metrics
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    usage_field = {"usage": None} if options.include_usage else {}
    longest_stop = max((len(stop) for stop in work.sampling.stop), default=0)
    sent = [0] * len(work.items)
    started = [False] * len(work.items)
    ended = [False] * len(work.items)
    try:
        await response.prepare(request)
        while True:
            await work.progress.wait()
            work.progress.clear()
            for i, row in enumerate(work.items):
                ready = _ready(row, longest_stop)
                finished = row.finish_reason is not None
                if ended[i] or (ready == sent[i] and not finished):
                    continue
                text = row.text[sent[i] : ready]
                chunk = {**head, "choices": [choice(i, row, text, not started[i])], **usage_field}
                await _send(response, chunk)
                sent[i], started[i], ended[i] = ready, True, finished
            if future.done():
                break
        error = future.exception()
        if error is not None:
            log.error("generation failed mid-stream", exc_info=error)
            await _send(response, openai_body(RequestRefused(500, f"generation failed: {error}")))
        elif options.include_usage:
            await _send(response, {**head, "choices": [], "usage": work.usage()})
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
    except ConnectionResetError:
        log.info("client went away mid-stream", extra={"fields": {"id": head["id"]}})
    finally:
        # Gone (a failed write, or aiohttp cancelling the handler): the batcher drops the
        # withdrawn generation before its next step, and its cache with it.
        if not future.done():
            future.cancel()
        work.record(metrics)
    return response


async def _send(response: web.StreamResponse, chunk: dict[str, Any]) -> None:
    await response.write(b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n")
