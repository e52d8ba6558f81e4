"""The generated CRDs: in sync with the models, valid, structural and useful to kubectl."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from bigmodel.api.crds import crds, render, write_crds

ROOT = Path(__file__).resolve().parents[2]
CRDS = {crd["spec"]["names"]["kind"]: crd for crd in crds()}


def schema_nodes(schema: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every (path, node) of a structural schema."""
    nodes = [(path, schema)]
    for name, prop in schema.get("properties", {}).items():
        nodes += schema_nodes(prop, f"{path}.{name}")
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            nodes += schema_nodes(schema[key], f"{path}[{key}]")
    return nodes


def open_api(kind: str) -> dict[str, Any]:
    schema: dict[str, Any] = CRDS[kind]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def test_crds_directory_matches_the_models_byte_for_byte(tmp_path: Path) -> None:
    for path in write_crds(tmp_path):
        committed = ROOT / "crds" / path.name
        assert committed.exists(), f"{committed} is missing: run `make crds`"
        assert committed.read_text() == path.read_text(), f"{committed} is stale: run `make crds`"


def test_rendering_is_deterministic() -> None:
    assert [render(c) for c in crds()] == [render(c) for c in crds()]


@pytest.mark.parametrize("kind", sorted(CRDS))
def test_crd_is_a_valid_kubernetes_1_33_object(kind: str) -> None:
    kubernetes_validate.validate(CRDS[kind], "1.33.0", strict=True)


@pytest.mark.parametrize("kind", sorted(CRDS))
def test_schema_is_structural(kind: str) -> None:
    for path, node in schema_nodes(open_api(kind)):
        assert "$ref" not in node, path
        assert (
            node.get("type")
            or node.get("x-kubernetes-int-or-string")
            or node.get("x-kubernetes-preserve-unknown-fields")
        ), f"{path} has no type"
        for branch in node.get("anyOf", []):
            assert node.get("x-kubernetes-int-or-string"), f"{path}: anyOf outside int-or-string"
            assert set(branch) == {"type"}, path
        assert not ({"oneOf", "allOf", "not", "uniqueItems"} & set(node)), path


@pytest.mark.parametrize("kind", sorted(CRDS))
def test_every_spec_and_status_field_has_a_description(kind: str) -> None:
    for path, node in schema_nodes(open_api(kind)):
        if path.startswith((".spec", ".status")) and not path.endswith("]"):
            assert node.get("description"), f"{path} has no description (kubectl explain)"


@pytest.mark.parametrize("kind", sorted(CRDS))
def test_list_map_keys_are_required_in_their_items(kind: str) -> None:
    for path, node in schema_nodes(open_api(kind)):
        for key in node.get("x-kubernetes-list-map-keys", []):
            assert key in node["items"].get("required", []), f"{path}: map key {key}"


@pytest.mark.parametrize(
    ("kind", "short_name", "columns"),
    [
        ("BigModelJob", "bmj", ["Phase", "Nodes", "Running", "Restarts", "T", "S", "Age"]),
        (
            "BigModelService",
            "bms",
            ["Phase", "Desired", "Ready", "S", "T", "Replicas", "URL", "Age"],
        ),
    ],
)
def test_kubectl_get_shows_short_names_category_and_columns(
    kind: str, short_name: str, columns: list[str]
) -> None:
    spec = CRDS[kind]["spec"]
    assert spec["names"]["shortNames"] == [short_name]
    assert spec["names"]["categories"] == ["bigmodel"]
    assert [c["name"] for c in spec["versions"][0]["additionalPrinterColumns"]] == columns


@pytest.mark.parametrize("kind", sorted(CRDS))
def test_one_version_is_served_and_stored_with_the_status_subresource(kind: str) -> None:
    (version,) = CRDS[kind]["spec"]["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"]["status"] == {}


def test_service_has_the_scale_subresource_for_kubectl_scale_and_hpa() -> None:
    scale = CRDS["BigModelService"]["spec"]["versions"][0]["subresources"]["scale"]
    assert scale == {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }


def test_printer_columns_point_at_existing_fields() -> None:
    for kind, crd in CRDS.items():
        paths = {path for path, _ in schema_nodes(open_api(kind))}
        for column in crd["spec"]["versions"][0]["additionalPrinterColumns"]:
            if not column["jsonPath"].startswith(".metadata"):
                assert column["jsonPath"] in paths, f"{kind} column {column['name']}"
