"""Flags and their environment variables."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from bigmodel.serving.config import (
    ServerConfig,
    UsageError,
    build_parser,
    env_name,
    parse_config,
)

REQUIRED = ["--model-name", "m", "--model-uri", "/models/m"]


def test_defaults_suit_a_single_replica_on_port_8000() -> None:
    config = parse_config(REQUIRED, {})
    assert (config.port, config.host, config.device, config.dtype) == (
        8000,
        "0.0.0.0",
        "auto",
        "float32",
    )
    assert config.max_batch_size == 32 and config.max_queue_delay_ms == 2.0
    assert config.request_metrics is True
    assert config.prefill_chunk_tokens == 512


def test_every_flag_can_come_from_its_environment_variable() -> None:
    env = {
        "BIGMODEL_SERVING_MODEL_NAME": "m",
        "BIGMODEL_SERVING_MODEL_URI": "/models/m",
        "BIGMODEL_SERVING_MAX_BATCH_SIZE": "8",
        "BIGMODEL_SERVING_MAX_QUEUE_DELAY_MS": "0.5",
        "BIGMODEL_SERVING_REQUEST_METRICS": "false",
        "BIGMODEL_SERVING_TERMINATION_MESSAGE_PATH": "/tmp/reason",
    }
    config = parse_config([], env)
    assert (config.model_name, config.max_batch_size, config.max_queue_delay_ms) == ("m", 8, 0.5)
    assert config.request_metrics is False
    assert config.termination_message_path == Path("/tmp/reason")


def test_a_flag_wins_over_its_environment_variable() -> None:
    config = parse_config([*REQUIRED, "--port", "9000"], {"BIGMODEL_SERVING_PORT": "7000"})
    assert config.port == 9000


def test_every_setting_is_a_flag_whose_help_names_its_variable() -> None:
    parser = build_parser({})
    options = [action for action in parser._actions if action.dest != "help"]
    assert {action.dest for action in options} == {f.name for f in fields(ServerConfig)}
    help_text = parser.format_help()
    for action in options:
        flag = action.option_strings[0]
        assert flag in help_text
        assert action.help and env_name(flag) in action.help


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--model-uri", "/m"], {}, "--model-name"),
        (["--model-name", "m"], {}, "--model-uri is required"),
        ([*REQUIRED, "--max-batch-size", "0"], {}, "--max-batch-size: must be between 1"),
        ([*REQUIRED, "--device", "tpu"], {}, "expected one of auto, cpu, cuda"),
        ([*REQUIRED, "--prefill-chunk-tokens", "0"], {}, "--prefill-chunk-tokens: must be >= 1"),
        ([*REQUIRED, "--port", "http"], {}, "expected an integer"),
        (REQUIRED, {"BIGMODEL_SERVING_MAX_QUEUE_SIZE": "many"}, "BIGMODEL_SERVING_MAX_QUEUE_SIZE"),
        (REQUIRED, {"BIGMODEL_SERVING_REQUEST_METRICS": "maybe"}, "expected true or false"),
    ],
)
def test_a_bad_setting_is_a_usage_error_naming_it(
    argv: list[str], env: dict[str, str], message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        parse_config(argv, env)


def test_a_factory_needs_no_uri() -> None:
    config = parse_config(["--model-name", "m", "--model-factory", "pkg.mod:build"], {})
    assert (config.model_factory, config.model_uri) == ("pkg.mod:build", "")


def test_an_empty_termination_message_path_writes_nowhere() -> None:
    config = parse_config([*REQUIRED, "--termination-message-path", ""], {})
    assert config.termination_message_path is None
