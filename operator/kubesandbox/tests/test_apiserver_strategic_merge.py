"""Strategic merge patch: patches kubectl and controllers send, applied as kube-apiserver does."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kubesandbox.apiserver import k8s_schemas
from kubesandbox.apiserver.merging.strategic import (
    StrategicMergeError,
    StrategicMergeUnsupported,
    strategic_merge_patch,
)

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "labels": {"app": "web", "tier": "front"}, "finalizers": ["a"]},
    "spec": {
        "replicas": 1,
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [
                    {
                        "name": "web",
                        "image": "nginx:1",
                        "args": ["--a"],
                        "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "1"}],
                        "ports": [{"containerPort": 80, "protocol": "TCP"}],
                    },
                    {"name": "sidecar", "image": "busybox"},
                ],
                "volumes": [{"name": "data", "emptyDir": {}}],
                "tolerations": [{"key": "gpu", "operator": "Exists"}],
            },
        },
    },
}


def _at(obj: Any, *path: str | int) -> Any:
    for step in path:
        obj = obj[step]
    return obj


POD_SPEC = ("spec", "template", "spec")
WEB = (*POD_SPEC, "containers", 0)
CONTAINERS = _at(DEPLOYMENT, *POD_SPEC, "containers")


def _pod(**spec: Any) -> dict[str, Any]:
    """A patch of the deployment's pod spec."""
    return {"spec": {"template": {"spec": spec}}}


CASES: list[tuple[str, dict[str, Any], tuple[str | int, ...], Any]] = [
    ("kubectl label: adds a key", {"metadata": {"labels": {"x": "y"}}},
     ("metadata", "labels"), {"app": "web", "tier": "front", "x": "y"}),
    ("kubectl label tier-: null deletes a key", {"metadata": {"labels": {"tier": None}}},
     ("metadata", "labels"), {"app": "web"}),
    ("kubectl scale: scalar replaced", {"spec": {"replicas": 3}}, ("spec", "replicas"), 3),
    ("kubectl set image: container merged by name",
     _pod(containers=[{"name": "web", "image": "nginx:2"}]),
     WEB, {**_at(DEPLOYMENT, *WEB), "image": "nginx:2"}),
    ("new container appended after the live ones",
     _pod(containers=[{"name": "new", "image": "x"}]),
     (*POD_SPEC, "containers"), [*CONTAINERS, {"name": "new", "image": "x"}]),
    ("kubectl rollout restart: annotation added to the template",
     {"spec": {"template": {"metadata": {"annotations": {"restartedAt": "t"}}}}},
     ("spec", "template", "metadata"),
     {"labels": {"app": "web"}, "annotations": {"restartedAt": "t"}}),
    ("client-side apply: $patch delete and $setElementOrder in env",
     _pod(**{
         "$setElementOrder/containers": [{"name": "web"}, {"name": "sidecar"}],
         "containers": [{"name": "web", "$setElementOrder/env": [{"name": "C"}, {"name": "B"}],
                         "env": [{"name": "C", "value": "3"}, {"$patch": "delete", "name": "A"}]}],
     }),
     (*WEB, "env"), [{"name": "C", "value": "3"}, {"name": "B", "value": "1"}]),
    ("$setElementOrder reorders containers",
     _pod(**{"$setElementOrder/containers": [{"name": "sidecar"}, {"name": "web"}]}),
     (*POD_SPEC, "containers", 0, "name"), "sidecar"),
    ("ports merge by containerPort",
     _pod(containers=[{"name": "web", "ports": [{"containerPort": 443}]}]),
     (*WEB, "ports"), [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443}]),
    ("lists without a patch strategy are replaced: args",
     {"spec": {"template": {"spec": {"containers": [{"name": "web", "args": ["--b"]}]}}}},
     (*WEB, "args"), ["--b"]),
    ("lists without a patch strategy are replaced: tolerations",
     {"spec": {"template": {"spec": {"tolerations": [{"key": "x", "operator": "Exists"}]}}}},
     (*POD_SPEC, "tolerations"), [{"key": "x", "operator": "Exists"}]),
    ("$patch replace inside a merging list replaces it",
     _pod(containers=[{"name": "only", "image": "i"}, {"$patch": "replace"}]),
     (*POD_SPEC, "containers"), [{"name": "only", "image": "i"}]),
    ("$retainKeys clears the other strategy fields (kubectl apply of Recreate)",
     {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}},
     ("spec", "strategy"), {"type": "Recreate"}),
    ("$retainKeys in a volume switches its source",
     {"spec": {"template": {"spec": {"volumes": [
         {"$retainKeys": ["configMap", "name"], "name": "data", "configMap": {"name": "cfg"}}]}}}},
     (*POD_SPEC, "volumes"), [{"name": "data", "configMap": {"name": "cfg"}}]),
    ("$patch replace on a map replaces it",
     {"spec": {"template": {"metadata": {"labels": {"$patch": "replace", "v": "2"}}}}},
     ("spec", "template", "metadata", "labels"), {"v": "2"}),
    ("$patch delete on a map empties it",
     {"spec": {"strategy": {"$patch": "delete"}}}, ("spec", "strategy"), {}),
    ("$patch merge is a plain merge", {"metadata": {"labels": {"$patch": "merge", "x": "1"}}},
     ("metadata", "labels"), {"app": "web", "tier": "front", "x": "1"}),
    ("finalizers merge as a set of scalars", {"metadata": {"finalizers": ["b", "a", "c"]}},
     ("metadata", "finalizers"), ["b", "a", "c"]),
    ("$deleteFromPrimitiveList removes finalizers",
     {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}, ("metadata", "finalizers"), []),
    ("a missing map is created without directives",
     {"spec": {"template": {"spec": {"nodeSelector": {"$patch": "merge", "gpu": "h200"}}}}},
     (*POD_SPEC, "nodeSelector"), {"gpu": "h200"}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("patch", "path", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_patch_result(patch: dict[str, Any], path: tuple[str | int, ...], expected: Any) -> None:
    result = strategic_merge_patch("apps/v1", "Deployment", DEPLOYMENT, patch)
    assert _at(result, *path) == expected


def test_inputs_are_not_mutated() -> None:
    original, patch = copy.deepcopy(DEPLOYMENT), {"metadata": {"labels": {"app": None}}}
    strategic_merge_patch("apps/v1", "Deployment", original, patch)
    assert original == DEPLOYMENT
    assert patch == {"metadata": {"labels": {"app": None}}}


def test_untouched_fields_survive() -> None:
    result = strategic_merge_patch("apps/v1", "Deployment", DEPLOYMENT, {"spec": {"replicas": 2}})
    assert result == {**DEPLOYMENT, "spec": {**DEPLOYMENT["spec"], "replicas": 2}}


def test_service_ports_merge_by_port_on_core_v1() -> None:
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "spec": {"ports": [{"port": 80, "name": "http"}]},
    }
    patch = {"spec": {"ports": [{"port": 80, "targetPort": 8080}]}}
    result = strategic_merge_patch("v1", "Service", service, patch)
    assert result["spec"]["ports"] == [{"port": 80, "name": "http", "targetPort": 8080}]


def test_custom_resources_are_unsupported_media_type() -> None:
    with pytest.raises(StrategicMergeUnsupported, match="application/merge-patch"):
        strategic_merge_patch("train.example.com/v1alpha1", "TrainJob", {}, {"spec": {}})


@pytest.mark.parametrize(
    "patch",
    [
        {"spec": {"template": {"spec": {"containers": [{"image": "no-name"}]}}}},
        {"spec": {"strategy": {"$patch": "explode"}}},
        {"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {}}}},
        {"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}},
    ],
    ids=[
        "missing merge key",
        "unknown directive",
        "field outside retainKeys",
        "non-list directive",
    ],
)
def test_malformed_patches_are_rejected(patch: dict[str, Any]) -> None:
    with pytest.raises(StrategicMergeError):
        strategic_merge_patch("apps/v1", "Deployment", DEPLOYMENT, patch)


def test_schemas_walk_to_patch_metadata() -> None:
    pod_spec = k8s_schemas.builtin_schema("v1", "Pod")
    containers = k8s_schemas.walk(pod_spec, ["spec", "containers"])
    assert k8s_schemas.patch_strategy(containers) == (frozenset({"merge"}), "name")
    env = k8s_schemas.walk(pod_spec, ["spec", "containers", "env"])
    assert k8s_schemas.list_type(env) == ("map", ["name"])
    assert k8s_schemas.schema_type(k8s_schemas.walk(pod_spec, ["spec", "nodeName"])) == "string"
    assert k8s_schemas.walk(pod_spec, ["spec", "noSuchField"]) is None


def test_custom_resource_metadata_is_object_meta() -> None:
    root = k8s_schemas.object_schema("train.example.com/v1alpha1", "TrainJob", {"type": "object"})
    finalizers = k8s_schemas.walk(root, ["metadata", "finalizers"])
    assert k8s_schemas.list_type(finalizers) == ("set", [])
    assert k8s_schemas.builtin_schema("train.example.com/v1alpha1", "TrainJob") is None
