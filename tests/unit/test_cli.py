"""The `bigmodel` command: its surface, as a user and the operator image see it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bigmodel import __version__
from bigmodel.cli import build_parser, main


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in ("version", "crds", "run", "sandbox"):
        assert command in out


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    assert capsys.readouterr().out.strip() == f"bigmodel-operator {__version__}"


def test_run_defaults_to_all_namespaces_and_documented_ports() -> None:
    args = build_parser().parse_args(["run"])
    assert (args.namespace, args.health_port, args.metrics_port) == ([], 8081, 8080)


def test_run_namespace_is_repeatable() -> None:
    args = build_parser().parse_args(["run", "--namespace", "a", "--namespace", "b"])
    assert args.namespace == ["a", "b"]


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "bigmodel"
    out = subprocess.run([script, "version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("bigmodel-operator ")
