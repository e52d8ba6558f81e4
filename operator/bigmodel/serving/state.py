"""The server's shared state and what every model route does first: admit, read, queue.

Both protocols check the same things in the same order (draining, the model's name, ready)
and queue their work through the same batcher; they differ only in parsing and rendering.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bigmodel.serving.batcher import Batcher, Closed, QueueFull
from bigmodel.serving.config import ServerConfig
from bigmodel.serving.errors import RefusalReason, RequestRefused, unavailable
from bigmodel.serving.forward import ModelWork
from bigmodel.serving.metrics import ServingMetrics
from bigmodel.serving.model import ServedModel


@dataclass
class ServerState:
    """What the routes share: settings, metrics, and the model once it is ready."""

    config: ServerConfig
    metrics: ServingMetrics
    served: ServedModel | None = None
    batcher: Batcher[ModelWork] | None = None
    draining: bool = False
    in_flight: int = 0
    idle: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.idle.set()

    @property
    def ready(self) -> bool:
        """Loaded, warmed up, and not draining: traffic is welcome."""
        return self.batcher is not None and not self.draining

    def started(self) -> None:
        """A model request began (the drain waits for it)."""
        self.in_flight += 1
        self.idle.clear()

    def finished(self) -> None:
        """A model request ended."""
        self.in_flight -= 1
        if self.in_flight == 0:
            self.idle.set()

    def not_found(self, name: str, param: str) -> RequestRefused:
        """404 naming the served model."""
        return RequestRefused(
            404,
            f"model {name!r} is not served here; served models: [{self.config.model_name!r}]",
            param=param,
            reason=RefusalReason.NOT_FOUND,
        )

    def admit(self, name: str, param: str) -> tuple[ServedModel, Batcher[ModelWork]]:
        """The model and its batcher for a request naming `name`, or why not (503/404)."""
        if self.draining:
            raise unavailable(
                RefusalReason.DRAINING, "the server is shutting down; retry elsewhere"
            )
        if name != self.config.model_name:
            raise self.not_found(name, param)
        if self.served is None or self.batcher is None:
            raise unavailable(RefusalReason.NOT_READY, "the model is still loading; retry later")
        return self.served, self.batcher


STATE: web.AppKey[ServerState] = web.AppKey("state", ServerState)
"""Where the application keeps its state."""


async def read_json(request: web.Request) -> Any:
    """The request body as JSON; 413 above the size limit, 400 when it is not JSON."""
    body = await request.read()
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as error:
        raise RequestRefused(400, f"request body is not valid JSON: {error}") from None


def enqueue(batcher: Batcher[ModelWork], work: ModelWork) -> asyncio.Future[None]:
    """Queue `work`; a full queue or a drain is a 503 with Retry-After."""
    try:
        return batcher.enqueue(work)
    except QueueFull:
        raise unavailable(
            RefusalReason.QUEUE_FULL, "the request queue is full; retry later"
        ) from None
    except Closed:
        raise unavailable(
            RefusalReason.DRAINING, "the server is shutting down; retry elsewhere"
        ) from None


async def run(batcher: Batcher[ModelWork], work: ModelWork) -> None:
    """Queue `work` and wait for it (503 with Retry-After when it cannot be queued)."""
    await enqueue(batcher, work)
