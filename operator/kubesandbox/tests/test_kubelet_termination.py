"""Termination messages: the message file's last 4096 bytes, or with FallbackToLogsOnError
the log's last 80 lines (their first 2048 bytes) after an error exit and an empty file."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubesandbox.kubelet.termination import (
    FALLBACK_TO_LOGS,
    MAX_LOG_BYTES,
    MAX_MESSAGE_BYTES,
    container_path,
    fresh,
    message,
    message_file,
)


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    """(message file, log file) of one container run."""
    log = tmp_path / "main.log"
    log.write_text("".join(f"log line {i} {'.' * 40}\n" for i in range(200)))  # 80 > 2048 B
    return fresh(message_file(tmp_path / "pod", "main")), log


def test_each_container_has_its_own_message_file(tmp_path: Path) -> None:
    assert message_file(tmp_path, "a") != message_file(tmp_path, "b")


def test_the_default_path_is_kubes() -> None:
    assert container_path({"name": "c"}) == "/dev/termination-log"
    assert container_path({"name": "c", "terminationMessagePath": "/tmp/why"}) == "/tmp/why"


def test_a_new_run_starts_with_an_empty_file(files: tuple[Path, Path]) -> None:
    path, _ = files
    path.write_text("from the last run")
    assert fresh(path).read_bytes() == b""


def test_the_file_is_the_message(files: tuple[Path, Path]) -> None:
    path, log = files
    path.write_text("model not found: /models/x")
    assert message({"name": "c"}, path, log, 1) == "model not found: /models/x"


def test_a_long_message_keeps_its_last_4096_bytes(files: tuple[Path, Path]) -> None:
    path, log = files
    path.write_text("a" * 5000 + "END")
    said = message({"name": "c"}, path, log, 0)
    assert len(said) == MAX_MESSAGE_BYTES and said.endswith("END")


@pytest.mark.parametrize(
    ("policy", "code", "expected"),
    [
        ("File", 1, ""),  # the default policy never reads the log
        (FALLBACK_TO_LOGS, 0, ""),  # a success keeps an empty message
        (FALLBACK_TO_LOGS, 1, "tail"),
    ],
)
def test_fallback_to_logs_only_on_error(
    files: tuple[Path, Path], policy: str, code: int, expected: str
) -> None:
    path, log = files
    said = message({"name": "c", "terminationMessagePolicy": policy}, path, log, code)
    assert ("log line" in said) == (expected == "tail")


def test_the_log_fallback_is_the_last_80_lines_cut_to_2048_bytes(files: tuple[Path, Path]) -> None:
    path, log = files
    said = message({"name": "c", "terminationMessagePolicy": FALLBACK_TO_LOGS}, path, log, 2)
    assert said.startswith("log line 120 ")  # 200 lines: the last 80 start at line 120
    assert len(said.encode()) == MAX_LOG_BYTES


def test_a_short_log_is_taken_whole(files: tuple[Path, Path]) -> None:
    path, log = files
    log.write_text("Traceback (most recent call last):\nValueError: bad model\n")
    said = message({"name": "c", "terminationMessagePolicy": FALLBACK_TO_LOGS}, path, log, 1)
    assert said == "Traceback (most recent call last):\nValueError: bad model\n"


def test_a_written_message_wins_over_the_log(files: tuple[Path, Path]) -> None:
    path, log = files
    path.write_text("out of memory")
    said = message({"name": "c", "terminationMessagePolicy": FALLBACK_TO_LOGS}, path, log, 1)
    assert said == "out of memory"
