"""The server's life: listen, load and warm up, serve, drain on SIGTERM, exit with a code.

HTTP comes up first, so liveness answers while a large model loads; readiness turns 200
only after the model loaded and one warm-up forward passed. SIGTERM (or SIGINT) turns
readiness 503 at once and refuses new model requests with 503 + Retry-After, lets those
in flight finish for at most `--drain-seconds`, then exits 0. A failure to load or to
listen exits non-zero (see `ExitCode`) with a one-line reason in the termination message.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from aiohttp import web

from bigmodel.serving.app import build_app
from bigmodel.serving.batcher import Batcher
from bigmodel.serving.config import (
    ServerConfig,
    UsageError,
    build_parser,
    default_termination_path,
    env_name,
    parse_config,
)
from bigmodel.serving.errors import ExitCode
from bigmodel.serving.forward import ForwardRunner, ModelWork
from bigmodel.serving.hf_loading import is_hf_uri, load_hf
from bigmodel.serving.loading import (
    ModelLoadError,
    load_checkpoint,
    load_factory,
    place,
    resolve_device,
)
from bigmodel.serving.metrics import ServingMetrics
from bigmodel.serving.state import ServerState
from bigmodel.serving.worker import DeviceWorker

log = logging.getLogger("bigmodel.serving")
MESSAGE_LIMIT = 4096  # bytes Kubernetes keeps of a termination message
WORKER_NAME = "bigmodel-forward"


class JsonLines(logging.Formatter):
    """One JSON object per log line, with a record's `fields` extra merged in."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": round(record.created, 3),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def write_termination_message(path: Path | None, reason: str) -> None:
    """`reason` on one line, cut to Kubernetes' limit; best effort (never raises)."""
    if path is None:
        return
    line = " ".join(reason.split())
    data = line.encode()[:MESSAGE_LIMIT].decode(errors="ignore")
    try:
        path.write_text(data + "\n")
    except OSError as error:
        log.warning("cannot write the termination message", extra={"fields": {"error": str(error)}})


def load_model(config: ServerConfig) -> ForwardRunner:
    """The configured model on its device and dtype, warmed up (runs on the device worker)."""
    device = resolve_device(config.device)
    if config.torch_threads:
        torch.set_num_threads(config.torch_threads)  # here: the thread that runs forwards
    if config.model_factory:
        served = load_factory(config.model_factory, config.model_uri)
    elif is_hf_uri(config.model_uri):
        served = load_hf(
            config.model_uri,
            trust_remote_code=config.trust_remote_code,
            prefill_chunk_tokens=config.prefill_chunk_tokens,
        )
    else:
        served = load_checkpoint(config.model_uri)
    runner = ForwardRunner(place(served, device, config.dtype), device)
    try:
        runner.warm_up()
    except Exception as error:
        raise ModelLoadError(f"warm-up forward failed: {type(error).__name__}: {error}") from None
    return runner


async def _until_stopped(stop: asyncio.Event, task: asyncio.Future[Any]) -> bool:
    """Wait for `task` or a stop request; True when stopped first."""
    stopper = asyncio.ensure_future(stop.wait())
    done, _ = await asyncio.wait({stopper, task}, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    return task not in done


async def serve(config: ServerConfig, stop: asyncio.Event | None = None) -> ExitCode:
    """Run the server until `stop` is set; without one, until SIGTERM or SIGINT."""
    if stop is None:
        stop = asyncio.Event()
        for number in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(number, stop.set)
    metrics = ServingMetrics(enabled=config.request_metrics)
    state = ServerState(config, metrics)
    # The drain already waited for requests in flight: cleanup need not wait again.
    runner = web.AppRunner(build_app(state), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, config.host, config.port).start()
    except OSError as error:
        await runner.cleanup()
        reason = f"cannot listen on {config.host}:{config.port}: {error.strerror or error}"
        log.error(reason)
        write_termination_message(config.termination_message_path, reason)
        return ExitCode.LISTEN_FAILED
    log.info("listening", extra={"fields": {"host": config.host, "port": config.port}})
    worker = DeviceWorker(WORKER_NAME)
    try:
        return await _serve_model(config, state, worker, stop)
    finally:
        await runner.cleanup()
        # Idle once the model is served and drained; while loading, it cannot be waited for.
        if not worker.close(timeout=5.0 if state.served else 0.0):
            log.warning("the device worker is still busy; exiting without it")


async def _serve_model(
    config: ServerConfig, state: ServerState, worker: DeviceWorker, stop: asyncio.Event
) -> ExitCode:
    started = time.monotonic()
    loading = asyncio.ensure_future(worker.call(lambda: load_model(config)))
    if await _until_stopped(stop, loading):
        log.info("stopped while loading the model")
        return ExitCode.OK
    try:
        runner = loading.result()
    except Exception as error:
        reason = str(error) if isinstance(error, ModelLoadError) else f"{error!r}"
        log.error("model load failed", extra={"fields": {"reason": reason}})
        write_termination_message(config.termination_message_path, f"model load failed: {reason}")
        return ExitCode.MODEL_LOAD_FAILED
    scheduling = activate(state, runner, worker)
    log.info("ready", extra={"fields": {
        "model": config.model_name, "source": runner.served.source, "device": str(runner.device),
        "dtype": config.dtype, "seconds": round(time.monotonic() - started, 3),
    }})  # fmt: skip
    await stop.wait()
    await drain(state)
    scheduling.cancel()
    return ExitCode.OK


def activate(state: ServerState, runner: ForwardRunner, worker: DeviceWorker) -> asyncio.Task[None]:
    """Serve `runner`'s model through a new batcher on `worker`: the state turns ready."""
    config = state.config
    batcher: Batcher[ModelWork] = Batcher(
        lambda works: worker.call(
            lambda: runner.run_while(works, lambda seconds: batcher.continues(works, seconds))
        ),
        state.metrics,
        max_batch_size=config.max_batch_size,
        max_queue_delay=config.max_queue_delay_ms / 1000,
        max_queue_size=config.max_queue_size,
    )
    state.served, state.batcher = runner.served, batcher
    state.metrics.model_loaded.set(1)
    return asyncio.create_task(batcher.run(), name="bigmodel-batcher")


async def drain(state: ServerState) -> None:
    """Readiness 503 and new requests refused at once; wait for those in flight, bounded."""
    state.draining = True
    if state.batcher is not None:
        state.batcher.close()
    pending = state.in_flight
    log.info("draining", extra={"fields": {"in_flight": pending}})
    try:
        await asyncio.wait_for(state.idle.wait(), state.config.drain_seconds)
    except TimeoutError:
        log.warning("drain timed out", extra={"fields": {"abandoned": state.in_flight}})
    else:
        log.info("drained", extra={"fields": {"finished": pending}})


def _usage_target(argv: Sequence[str] | None, env: Mapping[str, str]) -> Path | None:
    """Where to write a usage error: the path flag or variable, read without the parser."""
    flag = "--termination-message-path"
    args = list(sys.argv[1:] if argv is None else argv)
    path = env.get(env_name(flag))
    for i, arg in enumerate(args):
        if arg.startswith(flag + "="):
            path = arg.split("=", 1)[1]
        elif arg == flag and i + 1 < len(args):
            path = args[i + 1]
    if path is None:
        return default_termination_path()
    return Path(path) if path else None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse flags, then serve; returns the exit code."""
    env = os.environ
    try:
        config = parse_config(argv, env)
    except UsageError as error:
        build_parser({}).print_usage(sys.stderr)
        print(f"bigmodel.serving: error: {error}", file=sys.stderr)
        write_termination_message(_usage_target(argv, env), f"bad configuration: {error}")
        return ExitCode.USAGE
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLines())
    logging.basicConfig(level=config.log_level, handlers=[handler], force=True)
    try:
        code = asyncio.run(serve(config))
    except Exception as error:
        log.exception("server crashed")
        write_termination_message(config.termination_message_path, f"crashed: {error!r}")
        return ExitCode.ERROR
    if any(thread.name == WORKER_NAME and thread.is_alive() for thread in threading.enumerate()):
        # A worker still inside torch (a load cut short by SIGTERM) would make the
        # interpreter's shutdown abort: leave without finalizing, output flushed.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code
