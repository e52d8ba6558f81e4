"""The two distributions: the operator's wheel carries the product only, and kubesandbox's
wheel carries the whole sandbox with its data, so each installs without the other."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SANDBOX = ROOT / "operator" / "kubesandbox"


def build_wheel(project: Path, out: Path) -> zipfile.ZipFile:
    """`pip wheel` of a project directory, offline (no build isolation, no dependencies)."""
    done = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"),
            *("--wheel-dir", str(out), str(project)),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    [wheel] = out.glob("*.whl")
    return zipfile.ZipFile(wheel)


def metadata(wheel: zipfile.ZipFile) -> list[str]:
    """The `Requires-Dist` lines of a wheel."""
    name = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
    return Parser().parsestr(wheel.read(name).decode()).get_all("Requires-Dist") or []


def copy_tree(source: Path, target: Path) -> None:
    """A clean copy of a source tree (a build never writes into the checkout)."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))


def test_the_operator_wheel_has_no_sandbox_module(tmp_path: Path) -> None:
    project = tmp_path / "project"
    for name in ("pyproject.toml", "README.md"):
        project.mkdir(exist_ok=True)
        shutil.copy(ROOT / name, project / name)
    copy_tree(ROOT / "operator", project / "operator")
    wheel = build_wheel(project, tmp_path / "wheels")
    packages = {name.split("/")[0] for name in wheel.namelist() if name.endswith(".py")}
    assert packages == {"bigmodel"}
    assert 'kubesandbox>=0.1; extra == "sandbox"' in metadata(wheel)


def test_the_kubesandbox_wheel_has_every_module_and_the_shim_source(tmp_path: Path) -> None:
    project = tmp_path / "checkout"  # built from its own directory alone, whatever its name
    copy_tree(SANDBOX, project)
    wheel = build_wheel(project, tmp_path / "wheels")
    shipped = {name for name in wheel.namelist() if name.startswith("kubesandbox/")}
    sources = {
        f"kubesandbox/{path.relative_to(SANDBOX).as_posix()}"
        for path in SANDBOX.rglob("*")
        if path.suffix in (".py", ".c", ".typed")
        and not {"__pycache__", "tests"} & set(path.relative_to(SANDBOX).parts)
    }
    assert "kubesandbox/network/netshim.c" in sources
    assert shipped == sources
    entry_points = next(n for n in wheel.namelist() if n.endswith("entry_points.txt"))
    assert "kubesandbox = kubesandbox.cli:main" in wheel.read(entry_points).decode()
    assert not [r for r in metadata(wheel) if r.startswith("bigmodel")]
