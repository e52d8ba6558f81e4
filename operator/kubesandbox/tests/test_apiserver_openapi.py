"""OpenAPI documents: what kubectl explain and kubectl's field-validation check read from them."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest

from kubesandbox.apiserver.openapi import (
    BUILTIN_GROUP_VERSIONS,
    openapi_v2,
    openapi_v3_group_version,
    openapi_v3_index,
)

Obj = dict[str, Any]
CRD: Obj = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "trainjobs.train.example.com"},
    "spec": {
        "group": "train.example.com",
        "scope": "Namespaced",
        "names": {"plural": "trainjobs", "singular": "trainjob", "kind": "TrainJob"},
        "versions": [
            {
                "name": "v1alpha1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "description": "Desired state.",
                                "properties": {"nodes": {"type": "integer"}},
                            }
                        },
                    }
                },
            },
            {"name": "v0", "served": False, "storage": False},
        ],
    },
}
JOB_SCHEMA = "com.example.train.v1alpha1.TrainJob"


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):  # JSONSchemaProps has a property named "$ref"
            yield node["$ref"]
        for value in node.values():
            yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def test_index_lists_builtin_and_crd_group_versions() -> None:
    paths = openapi_v3_index([CRD])["paths"]
    assert set(paths) == {
        "api/v1",
        "apis/apps/v1",
        "apis/coordination.k8s.io/v1",
        "apis/rbac.authorization.k8s.io/v1",
        "apis/events.k8s.io/v1",
        "apis/apiextensions.k8s.io/v1",
        "apis/discovery.k8s.io/v1",
        "apis/policy/v1",
        "apis/batch/v1",
        "apis/apiregistration.k8s.io/v1",
        "apis/train.example.com/v1alpha1",
    }
    assert paths["apis/apps/v1"]["serverRelativeURL"].startswith("/openapi/v3/apis/apps/v1?hash=")
    assert len(BUILTIN_GROUP_VERSIONS) == 10


def test_hashes_are_deterministic_and_follow_the_crd() -> None:
    changed = copy.deepcopy(CRD)
    changed["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["description"] = "new"
    first, again = openapi_v3_index([CRD])["paths"], openapi_v3_index([CRD])["paths"]
    after = openapi_v3_index([changed])["paths"]
    assert first == again
    assert after["api/v1"] == first["api/v1"]
    assert after["apis/train.example.com/v1alpha1"] != first["apis/train.example.com/v1alpha1"]


def kubectl_supports_field_validation(doc: Obj, group: str, version: str, kind: str) -> bool:
    """cli-runtime's supportsQueryParamV3: a PATCH for the GVK listing `fieldValidation`."""
    gvk = {"group": group, "version": version, "kind": kind}
    for item in doc["paths"].values():
        patch = item.get("patch")
        if patch and patch.get("x-kubernetes-group-version-kind") == gvk:
            return any(p["name"] == "fieldValidation" for p in patch.get("parameters", []))
    return False


@pytest.mark.parametrize(
    ("gv_path", "group", "version", "kind"),
    [
        ("api/v1", "", "v1", "Pod"),
        ("api/v1", "", "v1", "ConfigMap"),
        ("apis/apps/v1", "apps", "v1", "Deployment"),
        ("apis/coordination.k8s.io/v1", "coordination.k8s.io", "v1", "Lease"),
        ("apis/train.example.com/v1alpha1", "train.example.com", "v1alpha1", "TrainJob"),
    ],
)
def test_kubectl_finds_server_side_field_validation(
    gv_path: str, group: str, version: str, kind: str
) -> None:
    doc = openapi_v3_group_version(gv_path, [CRD])
    assert doc is not None
    assert kubectl_supports_field_validation(doc, group, version, kind)


@pytest.mark.parametrize("gv_path", ["api/v1", "apis/apps/v1", "apis/train.example.com/v1alpha1"])
def test_every_reference_resolves_and_no_type_is_null(gv_path: str) -> None:
    doc = openapi_v3_group_version(gv_path, [CRD])
    assert doc is not None
    schemas = doc["components"]["schemas"]
    assert {r.removeprefix("#/components/schemas/") for r in refs(doc)} <= set(schemas)
    assert '"null"' not in json.dumps(schemas)


def test_crd_schema_is_found_by_gvk_for_kubectl_explain() -> None:
    doc = openapi_v3_group_version("apis/train.example.com/v1alpha1", [CRD])
    assert doc is not None
    job = doc["components"]["schemas"][JOB_SCHEMA]
    assert job["x-kubernetes-group-version-kind"] == [
        {"group": "train.example.com", "version": "v1alpha1", "kind": "TrainJob"}
    ]
    assert job["properties"]["spec"]["description"] == "Desired state."
    metadata = job["properties"]["metadata"]["allOf"][0]["$ref"]
    assert metadata == "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


def test_crd_paths_and_patch_types() -> None:
    doc = openapi_v3_group_version("apis/train.example.com/v1alpha1", [CRD])
    assert doc is not None
    item = "/apis/train.example.com/v1alpha1/namespaces/{namespace}/trainjobs/{name}"
    assert {item, item + "/status", "/apis/train.example.com/v1alpha1/trainjobs"} <= set(
        doc["paths"]
    )
    patch_types = set(doc["paths"][item]["patch"]["requestBody"]["content"])
    assert "application/apply-patch+yaml" in patch_types
    assert "application/strategic-merge-patch+json" not in patch_types


def test_builtin_patches_accept_strategic_merge() -> None:
    doc = openapi_v3_group_version("apis/apps/v1", [])
    assert doc is not None
    scale = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]
    assert "application/strategic-merge-patch+json" in scale["patch"]["requestBody"]["content"]
    assert scale["patch"]["x-kubernetes-group-version-kind"]["kind"] == "Scale"


def test_builtin_schema_types_are_openapi() -> None:
    doc = openapi_v3_group_version("api/v1", [])
    assert doc is not None
    schemas = doc["components"]["schemas"]
    assert schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] == {
        "type": "string",
        "format": "int-or-string",
    }
    assert schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]["type"] == "array"
    assert "enum" not in schemas["io.k8s.api.core.v1.Pod"]["properties"]["apiVersion"]


@pytest.mark.parametrize(
    "gv_path", ["apis/example.com/v1", "apis/apps", "api", "apis/train.example.com/v0"]
)
def test_unserved_group_versions_have_no_document(gv_path: str) -> None:
    assert openapi_v3_group_version(gv_path, [CRD]) is None


def test_swagger_v2_definitions() -> None:
    doc = openapi_v2([CRD])
    definitions = doc["definitions"]
    assert doc["swagger"] == "2.0"
    assert definitions["io.k8s.api.apps.v1.Deployment"]["x-kubernetes-group-version-kind"] == [
        {"group": "apps", "kind": "Deployment", "version": "v1"}
    ]
    assert JOB_SCHEMA in definitions
    assert {r.removeprefix("#/definitions/") for r in refs(definitions)} <= set(definitions)
