"""`bigmodel sandbox ...`: forwarded to kubesandbox's command line, imported only then."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bigmodel.cli import main


def test_sandbox_arguments_reach_the_kubesandbox_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["sandbox", "up", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: bigmodel sandbox up")
    assert "--simulated-nodes" in out


def test_sandbox_help_is_kubesandbox_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["sandbox", "--help"])
    assert exc.value.code == 0
    assert "usage: bigmodel sandbox" in capsys.readouterr().out


def test_without_kubesandbox_the_sandbox_command_says_so_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in [m for m in sys.modules if m == "kubesandbox" or m.startswith("kubesandbox.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "kubesandbox", None)  # import fails as if not installed
    assert main(["sandbox", "up"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "kubesandbox package is not installed" in err


def test_the_other_commands_do_not_import_the_sandbox() -> None:
    code = "import sys; from bigmodel.cli import main; main(['version']); print(" + (
        "any(m.startswith('kubesandbox') for m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == "False"


def test_kubesandbox_runs_as_a_module() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "kubesandbox", "up", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: python -m kubesandbox up")
