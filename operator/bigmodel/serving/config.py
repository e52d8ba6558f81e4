"""Command-line flags, each also readable from `BIGMODEL_SERVING_<FLAG>` (the flag wins).

A bad value, from a flag or from the environment, raises `UsageError` naming it; the server
exits 2 with that line as its termination message.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV_PREFIX = "BIGMODEL_SERVING_"
TERMINATION_LOG = Path("/dev/termination-log")
DEFAULT_PREFILL_CHUNK_TOKENS = 512
"""Prompt tokens prefilled per step: the chat prompts of a burst of requests still prefill
together in one step, a prompt of thousands of tokens over several (docs/serving.md)."""


class UsageError(Exception):
    """A bad flag or environment variable; the message names it."""


@dataclass(frozen=True)
class ServerConfig:
    """Everything the server is told at start."""

    model_name: str
    model_uri: str
    model_factory: str | None
    trust_remote_code: bool
    host: str
    port: int
    device: str
    dtype: str
    torch_threads: int
    max_batch_size: int
    max_queue_delay_ms: float
    max_queue_size: int
    max_body_bytes: int
    max_completion_tokens: int
    prefill_chunk_tokens: int
    drain_seconds: float
    termination_message_path: Path | None
    request_metrics: bool
    log_level: str


def env_name(flag: str) -> str:
    """The environment variable of `--some-flag`: BIGMODEL_SERVING_SOME_FLAG."""
    return ENV_PREFIX + flag.removeprefix("--").replace("-", "_").upper()


def _bounded(kind: Callable[[str], Any], low: float, high: float | None = None) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < low or (high is not None and value > high):
            bound = f"between {low} and {high}" if high is not None else f">= {low}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {text!r}")
        return value

    parse.__name__ = kind.__name__
    return parse


def _boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in choices:
            raise argparse.ArgumentTypeError(f"expected one of {', '.join(choices)}, got {text!r}")
        return text

    return parse


def default_termination_path() -> Path | None:
    """Kubernetes' termination message file when this process may write it, else none."""
    return TERMINATION_LOG if os.access(TERMINATION_LOG, os.W_OK) else None


# flag, parser, default (None: unset), help
_FLAGS: tuple[tuple[str, Callable[[str], Any], Any, str], ...] = (
    ("--model-name", str, None, "required: the name clients ask for (`/v2/models/NAME`, the "
     "OpenAI `model` field)"),
    ("--model-uri", str, None, "a Hugging Face model directory (config.json, safetensors), "
     "hf://org/name[@revision] from the local Hugging Face cache, or an example trainer "
     "checkpoint (a step-*.pt file, or a directory whose latest step-*.pt is served); with "
     "--model-factory, passed to the factory"),
    ("--model-factory", str, None, "'module:function' called with the model URI, returning a "
     "bigmodel.serving.ServedModel (serve your own torch model)"),
    ("--trust-remote-code", _boolean, False, "let a Hugging Face model run its own Python "
     "code (its auto_map); off: such a model fails to load"),
    ("--host", str, "0.0.0.0", "address to listen on"),
    ("--port", _bounded(int, 1, 65535), 8000, "HTTP port (API, health and /metrics)"),
    ("--device", _choice("auto", "cpu", "cuda"), "auto", "auto: cuda when available"),
    ("--dtype", _choice("float32", "bfloat16"), "float32", "weights and compute dtype"),
    ("--torch-threads", _bounded(int, 0, 1024), 0, "torch's intra-op threads (0: torch's "
     "default, one per core); on CPU, leave a core to the HTTP event loop"),
    ("--max-batch-size", _bounded(int, 1, 4096), 32, "most rows per forward; a request with "
     "more rows is refused (400)"),
    ("--max-queue-delay-ms", _bounded(float, 0, 10_000), 2.0, "milliseconds the oldest queued "
     "request may wait for more to fill a batch (0: never wait)"),
    ("--max-queue-size", _bounded(int, 1), 256, "requests waiting for a batch; one more gets "
     "503 + Retry-After"),
    ("--max-body-bytes", _bounded(int, 1024), 16 * 2**20, "largest request body (413 above)"),
    ("--max-completion-tokens", _bounded(int, 1), 1024, "largest max_tokens of a completion"),
    ("--prefill-chunk-tokens", _bounded(int, 1), DEFAULT_PREFILL_CHUNK_TOKENS, "most prompt "
     "tokens prefilled per decode step (KV-cache models): a longer prompt is prefilled over "
     "several steps, so running streams wait at most one such chunk between two tokens"),
    ("--drain-seconds", _bounded(float, 0), 25.0, "on SIGTERM, how long in-flight requests may "
     "take before the server exits anyway (keep it under the pod's grace period)"),
    ("--termination-message-path", str, None, "file where a failure's one-line reason is "
     f"written; unset: {TERMINATION_LOG} when writable; empty: nowhere"),
    ("--request-metrics", _boolean, True, "record per-request and per-batch metrics "
     "(--no-request-metrics: only for measuring their cost)"),
    ("--log-level", _choice("DEBUG", "INFO", "WARNING", "ERROR"), "INFO", "log level"),
)  # fmt: skip


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:
        raise UsageError(message)


def build_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    """The flags, with defaults taken from the environment where set."""
    parser = _Parser(
        prog="python -m bigmodel.serving",
        description="Serve one torch model over HTTP: Open Inference Protocol v2 and "
        "OpenAI-compatible completions, with dynamic batching. See docs/serving.md.",
        epilog="Exit codes: 0 drained after SIGTERM/SIGINT, 1 unexpected error, 2 bad flag or "
        "environment variable, 3 model load or warm-up failed, 4 port not bound. A non-zero "
        "exit writes a one-line reason to the termination message file.",
    )
    for flag, parse, default, help_text in _FLAGS:
        name = env_name(flag)
        value = default
        if name in env:
            try:
                value = parse(env[name])
            except argparse.ArgumentTypeError as error:
                raise UsageError(f"{name}={env[name]!r}: {error}") from None
        shown = "" if default is None else f"default: {default}; "
        kwargs: dict[str, Any] = {"default": value, "help": f"{help_text} ({shown}env {name})"}
        if parse is _boolean:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = parse
            kwargs["metavar"] = flag.removeprefix("--").split("-")[-1].upper()
        parser.add_argument(flag, **kwargs)
    return parser


def parse_config(argv: Sequence[str] | None, env: Mapping[str, str]) -> ServerConfig:
    """The configuration from flags over environment over defaults; UsageError if bad."""
    args = build_parser(env).parse_args(argv)
    if not args.model_name:
        raise UsageError(f"--model-name (or {env_name('--model-name')}) is required")
    if not args.model_uri and not args.model_factory:
        raise UsageError("--model-uri is required (unless --model-factory is given)")
    values = vars(args)
    values["model_uri"] = values["model_uri"] or ""
    path = values.pop("termination_message_path")
    values["termination_message_path"] = (
        default_termination_path() if path is None else Path(path) if path else None
    )
    return ServerConfig(**values)
