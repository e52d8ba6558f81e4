"""`python -m bigmodel.serving` as the image runs it, on a checkpoint the example trainer wrote.

The trainer runs alone (no torchrun) for a few steps; the server process serves its
checkpoint directory, and both protocols are driven over HTTP, concurrently too.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from kubesandbox.testing import free_port, stop_process

pytestmark = pytest.mark.integration

SOURCE_ROOT = Path(__file__).resolve().parents[2] / "operator"
TEST_SUPPORT = Path(__file__).resolve().parents[1]  # tests/, for support.serving's factories
ENV = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join([str(SOURCE_ROOT), str(TEST_SUPPORT)]),
    "PYTHONWARNINGS": "ignore",
}
MODEL = "tiny-chars"
LONG_TOKENS = 200
"""Tokens of the request in flight when SIGTERM comes (support.serving:slow_forward_model)."""


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example trainer's checkpoints of steps 3 and 6 of a tiny model."""
    directory = tmp_path_factory.mktemp("checkpoints")
    command = [
        sys.executable, "-m", "bigmodel.runtime.example_trainer", "--steps", "6",
        "--checkpoint-every", "3", "--checkpoint-dir", str(directory), "--batch-size", "4",
        "--seq-len", "32", "--d-model", "32", "--layers", "1", "--heads", "2",
    ]  # fmt: skip
    env = {**ENV, "BIGMODEL_METRICS_HOST": "127.0.0.1", "BIGMODEL_METRICS_PORT": str(free_port())}
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=180)
    return directory


class ServerProcess:
    """The server as a child process on a free port."""

    def __init__(self, tmp_path: Path, *flags: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.termination_log = tmp_path / "termination-log"
        self.log = tmp_path / "server.log"
        command = [
            sys.executable, "-m", "bigmodel.serving", "--model-name", MODEL, "--host", "127.0.0.1",
            "--port", str(self.port), "--termination-message-path", str(self.termination_log),
            *flags,
        ]  # fmt: skip
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(command, env=ENV, stdout=log, stderr=subprocess.STDOUT)

    async def wait_ready(self, session: aiohttp.ClientSession) -> None:
        for _ in range(600):
            assert self.process.poll() is None, self.log.read_text()
            try:
                async with session.get(f"{self.url}/v2/health/ready") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.1)
        raise AssertionError(f"never ready: {self.log.read_text()}")

    async def metrics(self, session: aiohttp.ClientSession) -> dict[str, float]:
        async with session.get(f"{self.url}/metrics") as response:
            text = await response.text()
        return {
            f"{s.name}{sorted(s.labels.items())}" if s.labels else s.name: s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }


@pytest.fixture
def server(checkpoints: Path, tmp_path: Path) -> Iterator[ServerProcess]:
    running = ServerProcess(tmp_path, "--model-uri", str(checkpoints), "--max-queue-delay-ms", "5")
    yield running
    if running.process.poll() is None:
        stop_process(running.process, signal.SIGTERM)


async def post(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> tuple[int, Any]:
    async with session.post(url, json=body) as response:
        return response.status, await response.json()


def infer_body(rows: list[list[int]]) -> dict[str, Any]:
    tensor = {"name": "input_ids", "datatype": "INT64", "shape": [len(rows), len(rows[0])]}
    return {"inputs": [{**tensor, "data": [t for row in rows for t in row]}]}


async def test_the_server_serves_the_trainers_latest_checkpoint_over_both_protocols(
    server: ServerProcess,
) -> None:
    async with aiohttp.ClientSession() as session:
        await server.wait_ready(session)
        async with session.get(f"{server.url}/v2/models/{MODEL}") as response:
            metadata = await response.json()
        vocab = metadata["outputs"][0]["shape"][1]
        status, inferred = await post(
            session, f"{server.url}/v2/models/{MODEL}/infer", infer_body([[1, 2, 3], [4, 5, 6]])
        )
        completion = {"model": MODEL, "prompt": "the cat", "max_tokens": 12, "temperature": 0}
        completed_status, completed = await post(
            session, f"{server.url}/v1/completions", completion
        )
    assert metadata["parameters"]["context_length"] == 32
    assert status == 200 and inferred["outputs"][0]["shape"] == [2, vocab]
    assert completed_status == 200
    assert completed["usage"] == {"prompt_tokens": 7, "completion_tokens": 12, "total_tokens": 19}
    assert len(completed["choices"][0]["text"]) == 12  # one character per token
    assert "step-000000006.pt" in server.log.read_text()


async def test_concurrent_requests_of_both_protocols_all_succeed_and_are_counted(
    server: ServerProcess,
) -> None:
    async with aiohttp.ClientSession() as session:
        await server.wait_ready(session)
        infers = [
            post(session, f"{server.url}/v2/models/{MODEL}/infer", infer_body([[i % 20] * (i + 1)]))
            for i in range(16)
        ]
        completions = [
            post(session, f"{server.url}/v1/completions",
                 {"model": MODEL, "prompt": ["a dog", "the cat"], "max_tokens": 8, "seed": i})
            for i in range(8)
        ]  # fmt: skip
        results = await asyncio.gather(*infers, *completions)
        metrics = await server.metrics(session)
        async with session.get(f"{server.url}/v2/health/ready") as ready:
            assert ready.status == 200
    assert [status for status, _ in results] == [200] * 24
    assert metrics["bigmodel_serving_requests_total[('code', '200'), ('endpoint', 'infer')]"] == 16
    completions_key = (
        "bigmodel_serving_requests_total[('code', '200'), ('endpoint', 'completions')]"
    )
    assert metrics[completions_key] == 8
    assert metrics["bigmodel_serving_request_duration_seconds_count[('endpoint', 'infer')]"] == 16
    # Every infer row ran once; each completion ran its 2 rows for 8 steps.
    assert metrics["bigmodel_serving_batch_size_sum"] == 16 + 8 * 2 * 8
    assert metrics["bigmodel_serving_requests_running"] == 0
    assert metrics["bigmodel_serving_model_loaded"] == 1


async def test_sigterm_drains_in_flight_requests_then_exits_0(
    checkpoints: Path, tmp_path: Path
) -> None:
    # A drain budget far above the long request's time, even on a loaded machine: what is
    # tested is that the request finishes, not how fast. Its forwards sleep, so it stays in
    # flight for LONG_TOKENS x SLOW_FORWARD_SECONDS (10 s) or more, however fast the machine.
    server = ServerProcess(
        tmp_path,
        *("--model-uri", str(checkpoints), "--model-factory", "support.serving:slow_forward_model"),
        *("--drain-seconds", "600"),
    )
    async with aiohttp.ClientSession() as session:
        await server.wait_ready(session)
        long = {"model": MODEL, "prompt": "the cat", "max_tokens": LONG_TOKENS, "temperature": 0}
        in_flight = asyncio.ensure_future(post(session, f"{server.url}/v1/completions", long))
        for _ in range(500):
            if (await server.metrics(session))["bigmodel_serving_requests_running"] == 1:
                break
            await asyncio.sleep(0.01)
        server.process.send_signal(signal.SIGTERM)
        for _ in range(500):
            async with session.get(f"{server.url}/v2/health/ready") as ready:
                if ready.status == 503:
                    break
            await asyncio.sleep(0.01)
        assert not in_flight.done()
        async with session.post(
            f"{server.url}/v2/models/{MODEL}/infer", json=infer_body([[1]])
        ) as refused:
            assert refused.status == 503 and refused.headers["Retry-After"] == "1"
        status, body = await in_flight
    assert status == 200 and body["usage"]["completion_tokens"] == LONG_TOKENS
    assert server.process.wait(timeout=30) == 0
    assert not server.termination_log.exists()
    assert '"msg": "drained"' in server.log.read_text()


async def test_sigterm_while_the_model_loads_exits_0_without_waiting_for_the_load(
    tmp_path: Path,
) -> None:
    server = ServerProcess(tmp_path, "--model-factory", "support.serving:slow_model")
    async with aiohttp.ClientSession() as session:
        for _ in range(600):
            try:
                async with session.get(f"{server.url}/v2/health/live") as live:
                    break
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.1)
        async with session.get(f"{server.url}/v2/health/ready") as ready:
            assert (live.status, ready.status) == (200, 503)
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=30) == 0  # the load alone takes 60 s


def test_a_bad_model_uri_exits_3_with_a_one_line_termination_message(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, "--model-uri", str(tmp_path / "missing"))
    assert server.process.wait(timeout=60) == 3
    message = server.termination_log.read_text()
    assert message.count("\n") == 1
    assert message.startswith("model load failed: --model-uri")
    assert "no such file or directory" in message


def test_help_documents_the_flags_and_their_variables() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bigmodel.serving", "--help"],
        env={**ENV, "COLUMNS": "200"}, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    for flag in ("--model-name", "--model-uri", "--max-batch-size", "--max-queue-delay-ms"):
        assert flag in result.stdout
    assert "BIGMODEL_SERVING_MAX_BATCH_SIZE" in result.stdout
    assert "3 model load" in result.stdout
