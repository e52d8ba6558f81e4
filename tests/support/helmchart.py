"""Render charts/bigmodel-operator with the real `helm` and read what it grants.

Shared by the chart tests (and by later tests that compare the RBAC grant with the requests
the operator really makes, e.g. the sandbox's request log): `render()` returns the rendered
objects, `grants()` the (apiGroup, resource, verb) triples of their roles.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "bigmodel-operator"
KUBE_VERSION = "1.33.0"
RELEASE = "bm"
NAMESPACE = "bigmodel-system"


def helm_binary() -> str | None:
    """The venv's helm (installed by `make venv`), else one on PATH."""
    local = Path(sys.executable).parent / "helm"
    return str(local) if local.exists() else shutil.which("helm")


requires_helm = pytest.mark.skipif(
    helm_binary() is None, reason="helm is not installed (`make venv` puts it in .venv/bin)"
)


def helm(*args: str, chart: Path = CHART) -> subprocess.CompletedProcess[str]:
    """Run `helm ARGS... CHART` and return the finished process (never raises on failure)."""
    binary = helm_binary()
    if binary is None:
        raise FileNotFoundError("helm is not installed: run `make venv`")
    return subprocess.run(
        [binary, *args, str(chart)], capture_output=True, text=True, timeout=120, check=False
    )


def values_args(values: Mapping[str, Any] | None) -> list[str]:
    """`--set-json` arguments, one per top-level key (no temporary files needed)."""
    return [f"--set-json={key}={json.dumps(value)}" for key, value in (values or {}).items()]


def render(
    values: Mapping[str, Any] | None = None,
    *,
    chart: Path = CHART,
    namespace: str = NAMESPACE,
    include_crds: bool = False,
) -> list[dict[str, Any]]:
    """The objects `helm template` renders for these values (CRDs of crds/ only on request)."""
    args = ["template", RELEASE, "--namespace", namespace, "--kube-version", KUBE_VERSION]
    if include_crds:
        args.append("--include-crds")
    done = helm(*args, *values_args(values), chart=chart)
    if done.returncode != 0:
        raise RuntimeError(f"helm template failed:\n{done.stderr}")
    return [obj for obj in yaml.safe_load_all(done.stdout) if obj]


def of_kind(objects: Iterable[Mapping[str, Any]], kind: str) -> list[Mapping[str, Any]]:
    """The objects of one kind."""
    return [obj for obj in objects if obj["kind"] == kind]


def only(objects: Iterable[Mapping[str, Any]], kind: str) -> Mapping[str, Any]:
    """The one object of a kind (fails when there are none or several)."""
    found = of_kind(objects, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


class Grant(NamedTuple):
    """One permission: a verb on a resource of an API group ("" is the core group)."""

    api_group: str
    resource: str
    verb: str


def rule_grants(rules: Iterable[Mapping[str, Any]]) -> set[Grant]:
    """Every (apiGroup, resource, verb) that a list of PolicyRules allows."""
    found: set[Grant] = set()
    for rule in rules:
        for group in rule.get("apiGroups", ()):
            for resource in rule.get("resources", ()):
                for verb in rule.get("verbs", ()):
                    found.add(Grant(group, resource, verb))
    return found


def grants(
    objects: Iterable[Mapping[str, Any]], kinds: Sequence[str] = ("ClusterRole", "Role")
) -> set[Grant]:
    """What the rendered roles of these kinds allow, all namespaces together."""
    found: set[Grant] = set()
    for obj in objects:
        if obj["kind"] in kinds:
            found |= rule_grants(obj.get("rules") or ())
    return found


class ValueDoc(NamedTuple):
    """A key of values.yaml, its default as written, and its comment."""

    path: str
    default: str
    comment: str


KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_][\w-]*):(?P<rest>.*)$")


def schema_keys(schema: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Dotted paths of every key values.schema.json declares (objects closed to others)."""
    keys = []
    for name, sub in schema.get("properties", {}).items():
        if name == "global":
            continue
        path = f"{prefix}{name}"
        keys.append(path)
        if sub.get("additionalProperties") is False:
            keys += schema_keys(sub, f"{path}.")
    return keys


def section_keys(schema: Mapping[str, Any], prefix: str = "") -> set[str]:
    """Dotted paths of the schema's closed objects: sections whose keys are documented one
    by one (other objects, like `resources`, are values)."""
    found = set()
    for name, sub in schema.get("properties", {}).items():
        if sub.get("additionalProperties") is False:
            found |= {f"{prefix}{name}", *section_keys(sub, f"{prefix}{name}.")}
    return found


def values_docs(
    values_yaml: Path = CHART / "values.yaml", schema_json: Path = CHART / "values.schema.json"
) -> list[ValueDoc]:
    """The keys of values.yaml that the schema declares, in file order, each with its
    default (JSON; `…` for a section) and the comment block above it (`# -- ` starts it)."""
    schema = json.loads(schema_json.read_text())
    wanted, sections = set(schema_keys(schema)), section_keys(schema)
    values = yaml.safe_load(values_yaml.read_text())
    docs: list[ValueDoc] = []
    comment: list[str] = []
    stack: list[tuple[int, str]] = []  # (indent, key) of the enclosing mappings
    for line in values_yaml.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            text = stripped.lstrip("#").strip()
            comment = [text.removeprefix("-- ")] if text.startswith("-- ") else [*comment, text]
            continue
        match = KEY.match(line)
        if not match:
            if not stripped:
                comment = []
            continue
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = ".".join([*(key for _, key in stack), match["key"]])
        stack.append((indent, match["key"]))
        if path in wanted:
            default: Any = values
            for part in path.split("."):
                default = default[part]
            shown = "…" if path in sections else json.dumps(default)
            docs.append(ValueDoc(path, shown, " ".join(comment)))
        comment = []
    return docs


def values_table() -> str:
    """The Markdown reference table of docs/install.md, generated from values.yaml."""
    rows = ["| Key | Default | Description |", "| --- | --- | --- |"]
    for doc in values_docs():
        if doc.default == "…":  # a section: its keys follow
            continue
        description = doc.comment.replace("|", "\\|")
        rows.append(f"| `{doc.path}` | `{doc.default}` | {description} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    # `python tests/support/helmchart.py` prints the values table for docs/install.md.
    print(values_table(), end="")
