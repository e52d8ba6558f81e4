"""The layers of pyproject.toml's import contracts hold today, and `lint-imports` (run by
`make lint`) fails when a module breaks one: each case adds one violating module to a copy of
`operator/` and checks it against the project's own contracts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"

pytestmark = pytest.mark.skipif(
    not LINT_IMPORTS.exists(), reason="lint-imports is not installed (the dev extra)"
)


def lint(
    tmp_path: Path, module: str | None = None, code: str = ""
) -> subprocess.CompletedProcess[str]:
    """`lint-imports` with the project's contracts over a copy of `operator/`, plus `module`
    (a path under operator/) holding `code` when given."""
    tree = tmp_path / "operator"
    shutil.copytree(
        REPO / "operator", tree, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    if module is not None:
        (tree / module).write_text(code)
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-logo", "--no-cache", str(REPO / "pyproject.toml")],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_tree_keeps_every_contract(tmp_path: Path) -> None:
    result = lint(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "code", "broken"),
    [
        ("bigmodel/api/violation.py", "import kopf\n", "import no kopf"),
        ("bigmodel/manifests/violation.py", "import kopf\n", "import no kopf"),
        ("bigmodel/api/violation.py", "import bigmodel.controller.k8s\n", "lower layer"),
        ("bigmodel/telemetry/violation.py", "import bigmodel.controller\n", "lower layer"),
        ("bigmodel/runtime/violation.py", "import bigmodel.api\n", "runtime and serving run"),
        ("bigmodel/runtime/violation.py", "import kubernetes\n", "runtime and serving run"),
        ("bigmodel/serving/violation.py", "import kopf\n", "runtime and serving run"),
        ("bigmodel/serving/violation.py", "import bigmodel.api\n", "runtime and serving run"),
        ("bigmodel/runtime/violation.py", "import bigmodel.serving\n", "does not depend on"),
        ("bigmodel/controller/violation.py", "import kubesandbox.testing\n", "only from the CLI"),
        ("kubesandbox/violation.py", "import bigmodel.api\n", "never imports the product"),
        (
            "kubesandbox/apiserver/violation.py",
            "import kubesandbox.kubelet\n",
            "never import each other",
        ),
        (
            "kubesandbox/kubelet/violation.py",
            "import kubesandbox.apiserver\n",
            "never import each other",
        ),
    ],
)
def test_a_violating_import_breaks_its_contract(
    tmp_path: Path, module: str, code: str, broken: str
) -> None:
    result = lint(tmp_path, module, code)
    assert result.returncode != 0
    _, _, report = result.stdout.partition("Broken contracts")
    assert broken in " ".join(report.split()), result.stdout
