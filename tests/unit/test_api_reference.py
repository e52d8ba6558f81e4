"""The generated API reference: current, and complete for every field a user can set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bigmodel.api.crds import crds
from bigmodel.api.reference import render

REFERENCE = Path(__file__).parents[2] / "docs" / "api-reference.md"


def _paths(node: dict[str, Any], path: str) -> list[str]:
    children = node.get("properties") or node.get("items", {}).get("properties", {})
    sep = "[]." if node.get("type") == "array" else "."
    return [path] + [p for k, v in children.items() for p in _paths(v, f"{path}{sep}{k}")]


def test_reference_is_current() -> None:
    assert REFERENCE.read_text() == render(crds()), "docs/api-reference.md is stale: run make crds"


def test_every_spec_field_is_documented_with_its_description() -> None:
    text = render(crds())
    for crd in crds():
        spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
        for path in _paths(spec, "spec"):
            assert f"| `{path}`" in text, path


def test_every_validation_rule_message_is_listed() -> None:
    text = render(crds())
    assert "minNodes must be less than or equal to maxNodes" in text
