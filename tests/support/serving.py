"""Shared pieces of the serving tests: a tiny real model, its settings, a served app.

`tiny_model` is also a real `--model-factory` (`support.serving:tiny_model`): the tests load
it through the same path as a user's factory.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from bigmodel.runtime.model import TinyLMConfig, synthetic_corpus
from bigmodel.serving import CharTokenizer, ServedModel
from bigmodel.serving.app import build_app
from bigmodel.serving.config import ServerConfig, parse_config
from bigmodel.serving.loading import load_checkpoint
from bigmodel.serving.metrics import ServingMetrics
from bigmodel.serving.server import activate, drain, load_model, serve
from bigmodel.serving.state import ServerState
from bigmodel.serving.worker import DeviceWorker
from kubesandbox.testing import free_port

VOCABULARY = sorted(set(synthetic_corpus(sentences=200)))
CONTEXT = 16
FACTORY = "support.serving:tiny_model"
MODEL = "tiny"


def tiny_model(uri: str = "") -> ServedModel:
    """A seeded 1-block TinyLM over the example corpus's characters (context 16)."""
    torch.manual_seed(0)
    config = TinyLMConfig(len(VOCABULARY), d_model=16, layers=1, heads=2, seq_len=CONTEXT)
    return ServedModel(
        config.build(), config.vocab, config.seq_len, CharTokenizer(VOCABULARY), source="tests"
    )


def wrong_vocabulary_model(uri: str = "") -> ServedModel:
    """A factory whose model's logits do not have the vocabulary it declares."""
    model = tiny_model()
    return ServedModel(model.module, model.vocab_size + 5, model.context_length)


def slow_model(uri: str = "") -> ServedModel:
    """A factory that takes a minute, as a large model's load would."""
    time.sleep(60)
    return tiny_model(uri)


def make_config(*flags: str, **overrides: Any) -> ServerConfig:
    """The server's configuration for the tiny model, from flags, then field overrides."""
    argv = ["--model-name", MODEL, "--model-factory", FACTORY, "--device", "cpu"]
    argv += ["--termination-message-path", "", *flags]
    return dataclasses.replace(parse_config(argv, {}), **overrides)


@dataclass
class Served:
    """A served application: its test client, state, and the device worker of its model."""

    client: TestClient[Any, Any]
    state: ServerState
    worker: DeviceWorker

    holds: list[asyncio.Future[bool]] = field(default_factory=list)

    async def occupy_device(self) -> threading.Event:
        """Keep the device worker busy (as a long forward would) until the event is set."""
        release = threading.Event()
        self.holds.append(asyncio.ensure_future(self.worker.call(lambda: release.wait(30))))
        await asyncio.sleep(0)  # the job is on the worker's queue now
        return release

    async def metrics(self) -> dict[str, float]:
        """Every sample of `/metrics`, keyed by name and sorted labels."""
        response = await self.client.get("/metrics")
        samples = {}
        for family in text_string_to_metric_families(await response.text()):
            for sample in family.samples:
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
        return samples


@asynccontextmanager
async def serving(config: ServerConfig | None = None) -> AsyncIterator[Served]:
    """The real application with its model loaded, batcher running, behind a test client."""
    config = config or make_config()
    state = ServerState(config, ServingMetrics(enabled=config.request_metrics))
    worker = DeviceWorker("test-forward")
    runner = await worker.call(lambda: load_model(config))
    scheduling = activate(state, runner, worker)
    try:
        async with TestClient(TestServer(build_app(state))) as client:
            yield Served(client, state, worker)
    finally:
        await drain(state)
        scheduling.cancel()
        worker.close()


class ServerThread:
    """`serve()` itself, on a free port, in a thread with its own event loop."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = dataclasses.replace(config, host="127.0.0.1", port=free_port())
        self.url = f"http://127.0.0.1:{self.config.port}"
        self.exit_code: int | None = None
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.exit_code = self._loop.run_until_complete(serve(self.config, self._stop))

    def start(self) -> ServerThread:
        """Start, and return once ready (or once it has exited)."""
        self._thread.start()
        while self._thread.is_alive() and not self.answers("/v2/health/ready"):
            time.sleep(0.02)
        return self

    def answers(self, path: str) -> bool:
        """Whether `path` answers 200."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def stop(self) -> int | None:
        """Ask it to drain and stop, as SIGTERM would; its exit code."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        return self.exit_code


async def until(condition: Callable[[], bool]) -> None:
    """Let the event loop run until `condition` holds (bounded: about 10 s)."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never held")


def infer_body(rows: list[list[int]], **extra: Any) -> dict[str, Any]:
    """An Open Inference Protocol infer request of token id rows."""
    tensor = {"name": "input_ids", "datatype": "INT64", "shape": [len(rows), len(rows[0])]}
    return {"inputs": [{**tensor, "data": [t for row in rows for t in row]}], **extra}


STRAGGLER_DIR = "BIGMODEL_TEST_STRAGGLER_DIR"
"""Environment of `straggler_model`: the directory where a file named after a pod slows it."""
STRAGGLER_SECONDS = 0.05


SLOW_FORWARD_SECONDS = 0.05
"""Each forward of `slow_forward_model`: a completion of N tokens lasts N times this or more."""


def _slowed(served: ServedModel, seconds: float, when: Callable[[], bool]) -> ServedModel:
    """`served` with each forward sleeping `seconds` first while `when()` holds."""

    def slow_down(*_: Any) -> None:
        if when():
            time.sleep(seconds)

    served.module.register_forward_pre_hook(slow_down)
    return served


def straggler_model(uri: str) -> ServedModel:
    """The checkpoint at `uri`, each forward slowed by STRAGGLER_SECONDS (a weak GPU, a noisy
    neighbour) while `$BIGMODEL_TEST_STRAGGLER_DIR/$POD_NAME` exists, or the mark of its
    machine, `$BIGMODEL_TEST_STRAGGLER_DIR/$BIGMODEL_NODE_NAME` (when that is set)."""
    names = (os.environ["POD_NAME"], os.environ.get("BIGMODEL_NODE_NAME"))
    marks = [Path(os.environ[STRAGGLER_DIR]) / name for name in names if name]
    return _slowed(
        load_checkpoint(uri), STRAGGLER_SECONDS, lambda: any(mark.exists() for mark in marks)
    )


def slow_forward_model(uri: str) -> ServedModel:
    """The checkpoint at `uri`, every forward slowed by SLOW_FORWARD_SECONDS: a request that
    stays in flight for a known time on any machine, idle or loaded (a sleep, not work)."""
    return _slowed(load_checkpoint(uri), SLOW_FORWARD_SECONDS, lambda: True)
