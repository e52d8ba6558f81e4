"""Shared pieces of the serving tests: a tiny real model, its settings, a served app.

`tiny_model` is also a real `--model-factory` (`serving_support:tiny_model`): the tests load
it through the same path as a user's factory.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import torch
from aiohttp.test_utils import TestClient, TestServer

from bigmodel.runtime.model import TinyLMConfig, synthetic_corpus
from bigmodel.serving import CharTokenizer, ServedModel
from bigmodel.serving.app import build_app
from bigmodel.serving.config import ServerConfig, parse_config
from bigmodel.serving.metrics import ServingMetrics
from bigmodel.serving.server import activate, drain, load_model
from bigmodel.serving.state import ServerState
from bigmodel.serving.worker import DeviceWorker

VOCABULARY = sorted(set(synthetic_corpus(sentences=200)))
CONTEXT = 16
FACTORY = "serving_support:tiny_model"
MODEL = "tiny"


def tiny_model(uri: str = "") -> ServedModel:
    """A seeded 1-block TinyLM over the example corpus's characters (context 16)."""
    torch.manual_seed(0)
    config = TinyLMConfig(len(VOCABULARY), d_model=16, layers=1, heads=2, seq_len=CONTEXT)
    return ServedModel(
        config.build(), config.vocab, config.seq_len, CharTokenizer(VOCABULARY), source="tests"
    )


def make_config(*flags: str, **overrides: Any) -> ServerConfig:
    """The server's configuration for the tiny model, from flags, then field overrides."""
    argv = ["--model-name", MODEL, "--model-factory", FACTORY, "--device", "cpu"]
    argv += ["--termination-message-path", "", *flags]
    return dataclasses.replace(parse_config(argv, {}), **overrides)


@asynccontextmanager
async def serving(
    config: ServerConfig | None = None,
) -> AsyncIterator[tuple[TestClient[Any, Any], ServerState]]:
    """The real application with its model loaded, batcher running, behind a test client."""
    config = config or make_config()
    state = ServerState(config, ServingMetrics(enabled=config.request_metrics))
    worker = DeviceWorker("test-forward")
    runner = await worker.call(lambda: load_model(config))
    scheduling = activate(state, runner, worker)
    try:
        async with TestClient(TestServer(build_app(state))) as client:
            yield client, state
    finally:
        await drain(state)
        scheduling.cancel()
        worker.close()


def infer_body(rows: list[list[int]], **extra: Any) -> dict[str, Any]:
    """An Open Inference Protocol infer request of token id rows."""
    tensor = {"name": "input_ids", "datatype": "INT64", "shape": [len(rows), len(rows[0])]}
    return {"inputs": [{**tensor, "data": [t for row in rows for t in row]}], **extra}
