"""The chart's Argo CD health checks (files/health/*.lua), run as Argo CD runs them against
the statuses the operator writes for each phase and reason; shipped in the chart package
and carried, as they are, by docs/gitops.md."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from lupa.lua51 import LuaError

import bigmodel
from support.argocd import HEALTH_DIR, KINDS, config_key, health, script_path
from support.helmchart import ROOT, helm, requires_helm
from support.statuses import CASES, Case

GITOPS_DOCS = ROOT / "docs" / "gitops.md"


def run(case: Case) -> dict[str, str]:
    return health(script_path(case.body["kind"]).read_text(), case.body)


def ready_message(body: dict[str, Any]) -> str:
    found = [c for c in body["status"].get("conditions", ()) if c["type"] == "Ready"]
    return str(found[0]["message"]) if found else ""


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_health_of_each_phase_and_reason(case: Case) -> None:
    assert run(case)["status"] == case.health


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_health_message_is_the_operators(case: Case) -> None:
    message = run(case)["message"]
    if case.reason is None:  # not acted on yet: no condition to quote
        assert message == "waiting for the bigmodel operator"
    elif "spec changed" in case.name:
        assert message == "waiting for the bigmodel operator to act on generation 2"
    else:
        assert message == ready_message(case.body) != ""


@pytest.mark.parametrize("kind", KINDS)
def test_a_resource_without_status_is_progressing(kind: str) -> None:
    body = {"kind": kind, "metadata": {"name": "x", "generation": 1}}
    assert health(script_path(kind).read_text(), body) == {
        "status": "Progressing",
        "message": "waiting for the bigmodel operator",
    }


def test_the_lua_runs_without_the_libraries_argo_cd_leaves_out() -> None:
    """The runner is as strict as Argo CD: a check using the string library fails here."""
    script = 'return {status = "Healthy", message = string.upper(obj.metadata.name)}'
    with pytest.raises(LuaError):
        health(script, {"metadata": {"name": "x"}})
    with pytest.raises(LuaError):
        health('return {status = "Healthy", message = ("x"):upper()}', {})


def test_every_kind_has_a_check_and_every_check_a_kind() -> None:
    assert sorted(HEALTH_DIR.glob("*.lua")) == sorted(script_path(k) for k in KINDS)


# -- Shipped: the chart package and the docs --------------------------------------------------


@requires_helm
def test_the_chart_package_ships_the_checks(tmp_path: Path) -> None:
    done = helm("package", "--destination", str(tmp_path))
    assert done.returncode == 0, done.stderr
    archive = tmp_path / f"bigmodel-operator-{bigmodel.__version__}.tgz"
    listing = subprocess.run(["tar", "-tzf", str(archive)], capture_output=True, text=True)
    for kind in KINDS:
        assert f"bigmodel-operator/files/health/{kind.lower()}.lua" in listing.stdout


def yaml_blocks(markdown: str) -> list[Any]:
    """The documents of every ```yaml block of a Markdown page."""
    blocks = re.findall(r"^```yaml\n(.*?)^```", markdown, re.DOTALL | re.MULTILINE)
    return [doc for block in blocks for doc in yaml.safe_load_all(block) if doc]


def test_the_gitops_docs_carry_the_current_checks_under_the_keys_argo_cd_reads() -> None:
    configs = [
        doc
        for doc in yaml_blocks(GITOPS_DOCS.read_text())
        if doc.get("kind") == "ConfigMap" and doc["metadata"]["name"] == "argocd-cm"
    ]
    assert len(configs) == 1, "docs/gitops.md shows one argocd-cm with the health checks"
    data = configs[0]["data"]
    for kind in KINDS:
        assert data[config_key(kind)] == script_path(kind).read_text(), (
            f"docs/gitops.md carries a stale {script_path(kind).name}: paste the file again"
        )
