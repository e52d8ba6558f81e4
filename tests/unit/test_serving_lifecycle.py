"""The server's life: ready after warm-up, drain on stop, exit codes and termination messages."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from bigmodel.serving.errors import ExitCode
from bigmodel.serving.server import drain, main, serve
from support.serving import MODEL, ServerThread, infer_body, make_config, serving, until

INFER = f"/v2/models/{MODEL}/infer"


async def test_a_drain_refuses_new_requests_and_lets_those_in_flight_finish() -> None:
    async with serving() as s:
        release = await s.occupy_device()
        assert s.state.batcher is not None
        batcher = s.state.batcher
        in_flight = asyncio.ensure_future(s.client.post(INFER, json=infer_body([[1, 2]])))
        await until(lambda: batcher.running == 1)
        draining = asyncio.ensure_future(drain(s.state))
        await until(lambda: s.state.draining)
        ready = await s.client.get("/v2/health/ready")
        live = await s.client.get("/v2/health/live")
        refused = await s.client.post(INFER, json=infer_body([[3]]))
        refused_error = (await refused.json())["error"]
        completion = await s.client.post("/v1/completions", json={"model": MODEL, "prompt": "a"})
        completion_error = (await completion.json())["error"]
        assert not draining.done()
        release.set()
        answered = await in_flight
        await asyncio.wait_for(draining, 10)
    assert (ready.status, live.status, answered.status) == (503, 200, 200)
    assert refused.status == 503 and refused.headers["Retry-After"] == "1"
    assert "shutting down" in refused_error
    assert completion.status == 503 and completion_error["code"] == "draining"


async def test_a_drain_gives_up_on_requests_that_outlast_the_drain_seconds() -> None:
    async with serving(make_config("--drain-seconds", "0.05")) as s:
        release = await s.occupy_device()
        in_flight = asyncio.ensure_future(s.client.post(INFER, json=infer_body([[1]])))
        await until(lambda: s.state.in_flight == 1)
        await asyncio.wait_for(drain(s.state), 10)
        assert s.state.in_flight == 1  # abandoned, not waited for
        release.set()
        await in_flight


def test_the_server_is_ready_after_warm_up_and_exits_0_when_stopped() -> None:
    server = ServerThread(make_config()).start()
    assert server.answers("/v2/health/ready") and server.answers("/metrics")
    assert server.stop() == ExitCode.OK


async def test_a_model_that_cannot_load_exits_3_with_a_one_line_reason(tmp_path: Path) -> None:
    message = tmp_path / "termination-log"
    config = make_config(
        host="127.0.0.1", port=0, model_factory=None, model_uri="/no/such/model",
        termination_message_path=message,
    )  # fmt: skip
    assert await serve(config, asyncio.Event()) == ExitCode.MODEL_LOAD_FAILED
    text = message.read_text()
    assert text.count("\n") == 1
    assert text.startswith("model load failed: --model-uri '/no/such/model': no such file")


async def test_a_model_failing_its_warm_up_exits_3(tmp_path: Path) -> None:
    message = tmp_path / "termination-log"
    config = make_config(
        host="127.0.0.1", port=0, termination_message_path=message,
        model_factory="support.serving:wrong_vocabulary_model",
    )  # fmt: skip
    assert await serve(config, asyncio.Event()) == ExitCode.MODEL_LOAD_FAILED
    assert "warm-up forward failed: ValueError: warm-up logits have shape" in message.read_text()


async def test_a_port_in_use_exits_4_with_a_one_line_reason(tmp_path: Path) -> None:
    message = tmp_path / "termination-log"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = make_config(host="127.0.0.1", port=port, termination_message_path=message)
        assert await serve(config, asyncio.Event()) == ExitCode.LISTEN_FAILED
    assert message.read_text().startswith(f"cannot listen on 127.0.0.1:{port}")


def test_a_bad_flag_exits_2_and_writes_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    message = tmp_path / "termination-log"
    argv = ["--model-name", "m", "--model-uri", "/m", "--max-batch-size", "none"]
    assert main([*argv, "--termination-message-path", str(message)]) == ExitCode.USAGE
    assert "--max-batch-size" in capsys.readouterr().err
    assert message.read_text().startswith("bad configuration: argument --max-batch-size")
