"""Server-side apply and managedFields tracking, on the workflows of kubectl, helm and kopf."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from kubesandbox.apiserver.merging.apply import (
    ApplyConflict,
    ApplyInvalid,
    default_field_manager,
    server_side_apply,
    track_update,
)
from kubesandbox.apiserver.merging.fieldsets import from_fields_v1, to_fields_v1

T1 = datetime(2026, 1, 1, tzinfo=UTC)
T2 = datetime(2026, 1, 2, tzinfo=UTC)
Obj = dict[str, Any]


def deployment(image: str = "nginx:1", env: dict[str, str] | None = None, replicas: int = 2) -> Obj:
    container: Obj = {"name": "web", "image": image}
    if env:
        container["env"] = [{"name": k, "value": v} for k, v in env.items()]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [container]},
            },
        },
    }


def apply(live: Obj | None, applied: Obj, manager: str = "kubectl", force: bool = False) -> Obj:
    result = server_side_apply("apps/v1", "Deployment", live, applied, manager, force, now=T1)
    result["metadata"].setdefault("resourceVersion", "1")
    return result


def managers(obj: Obj) -> dict[str, set[tuple[str, ...]]]:
    return {e["manager"]: from_fields_v1(e["fieldsV1"]) for e in obj["metadata"]["managedFields"]}


def container(obj: Obj) -> Obj:
    found: Obj = obj["spec"]["template"]["spec"]["containers"][0]
    return found


def test_create_records_applied_fields_in_fieldsv1() -> None:
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "labels": {"a": "1"}},
        "data": {"k": "v"},
    }
    result = server_side_apply("v1", "ConfigMap", None, cm, "kubectl", False, now=T1)
    assert result["metadata"]["managedFields"] == [
        {
            "manager": "kubectl",
            "operation": "Apply",
            "apiVersion": "v1",
            "time": "2026-01-01T00:00:00Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {"f:k": {}}, "f:metadata": {"f:labels": {"f:a": {}}}},
        }
    ]
    assert result["data"] == {"k": "v"}


def test_list_map_items_are_keyed_members() -> None:
    fields = managers(apply(None, deployment()))["kubectl"]
    item = ("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"web"}')
    assert {item, (*item, "f:name"), (*item, "f:image"), ("f:spec", "f:selector")} <= fields
    assert ("f:metadata", "f:name") not in fields


def test_reapply_is_a_no_op() -> None:
    live = apply(None, deployment(env={"A": "1"}))
    again = server_side_apply(
        "apps/v1", "Deployment", live, deployment(env={"A": "1"}), "kubectl", False, now=T2
    )
    assert again == live


def test_helm_install_then_upgrade_updates_and_prunes() -> None:
    installed = apply(None, deployment(env={"A": "1", "B": "1"}), manager="helm")
    upgraded = apply(
        installed, deployment(image="nginx:2", env={"B": "2", "C": "3"}), manager="helm"
    )
    assert container(upgraded)["image"] == "nginx:2"
    assert container(upgraded)["env"] == [{"name": "B", "value": "2"}, {"name": "C", "value": "3"}]
    assert upgraded["metadata"]["managedFields"][0]["time"] == "2026-01-01T00:00:00Z"
    assert upgraded != installed


def test_fields_dropped_from_the_config_are_removed_with_their_empty_parents() -> None:
    live = apply(None, deployment(env={"A": "1"}))
    applied = deployment()
    del applied["metadata"]["labels"]
    result = apply(live, applied)
    assert "env" not in container(result)
    assert "labels" not in result["metadata"]


def test_dropped_fields_another_manager_owns_stay() -> None:
    live = apply(None, deployment(env={"A": "1"}))
    live = apply(live, deployment(env={"A": "1"}), manager="other")
    result = apply(live, deployment())
    assert container(result)["env"] == [{"name": "A", "value": "1"}]


def test_same_value_is_shared_without_conflict() -> None:
    live = apply(None, deployment(replicas=3), manager="helm")
    result = apply(live, deployment(replicas=3), manager="kubectl")
    replicas = ("f:spec", "f:replicas")
    assert replicas in managers(result)["helm"]
    assert replicas in managers(result)["kubectl"]


def scaled_by_client_side_apply() -> Obj:
    live = apply(None, deployment(replicas=2))
    scaled = copy.deepcopy(live)
    scaled["spec"]["replicas"] = 5
    return track_update("apps/v1", "Deployment", live, scaled, "kubectl-client-side-apply", now=T2)


def test_conflict_names_the_field_and_the_other_manager() -> None:
    with pytest.raises(ApplyConflict) as raised:
        apply(scaled_by_client_side_apply(), deployment(replicas=2))
    assert str(raised.value) == (
        "Apply failed with 1 conflict: "
        'conflict with "kubectl-client-side-apply" using apps/v1: .spec.replicas'
    )
    assert raised.value.causes() == [
        {
            "type": "FieldManagerConflict",
            "message": 'conflict with "kubectl-client-side-apply" using apps/v1',
            "field": ".spec.replicas",
        }
    ]


def test_several_conflicts_are_listed_per_manager() -> None:
    live = apply(None, deployment(image="nginx:1", replicas=2), manager="helm")
    with pytest.raises(ApplyConflict) as raised:
        apply(live, deployment(image="nginx:2", replicas=4))
    assert str(raised.value) == (
        'Apply failed with 2 conflicts: conflicts with "helm":\n'
        "- .spec.replicas\n"
        '- .spec.template.spec.containers[name="web"].image'
    )


def test_force_takes_ownership() -> None:
    result = apply(scaled_by_client_side_apply(), deployment(replicas=2), force=True)
    assert result["spec"]["replicas"] == 2
    assert "kubectl-client-side-apply" not in managers(result)
    assert ("f:spec", "f:replicas") in managers(result)["kubectl"]


def test_atomic_lists_are_replaced_and_sets_united() -> None:
    live = apply(
        None, {**deployment(), "metadata": {"name": "web", "finalizers": ["a"]}}, manager="x"
    )
    applied = deployment()
    applied["metadata"]["finalizers"] = ["b"]
    container(applied)["args"] = ["--new"]
    result = apply(live, applied)
    assert result["metadata"]["finalizers"] == ["a", "b"]
    assert container(result)["args"] == ["--new"]


def test_managed_fields_in_an_apply_are_rejected() -> None:
    applied = deployment()
    applied["metadata"]["managedFields"] = []
    with pytest.raises(ApplyInvalid):
        apply(None, applied)


CRD_SCHEMA: Obj = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "nodes": {"type": "integer"},
                "env": {
                    "type": "array",
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                    "items": {"type": "object", "properties": {"name": {"type": "string"}}},
                },
                "command": {"type": "array", "items": {"type": "string"}},
            },
        }
    },
}


def test_custom_resources_use_the_crd_schema() -> None:
    job = {
        "apiVersion": "train.example.com/v1alpha1",
        "kind": "TrainJob",
        "metadata": {"name": "j", "labels": {"a": "1"}},
        "spec": {"nodes": 2, "env": [{"name": "X", "value": "1"}], "command": ["python"]},
    }
    result = server_side_apply(
        "train.example.com/v1alpha1", "TrainJob", None, job, "kubectl", False, CRD_SCHEMA
    )
    fields = managers(result)["kubectl"]
    assert ("f:spec", "f:env", 'k:{"name":"X"}', "f:value") in fields
    assert ("f:spec", "f:command") in fields
    assert ("f:metadata", "f:labels", "f:a") in fields


def test_update_on_create_owns_every_field() -> None:
    created = track_update("apps/v1", "Deployment", None, deployment(), "kopf", now=T1)
    entry = created["metadata"]["managedFields"][0]
    assert (entry["manager"], entry["operation"], entry["apiVersion"]) == (
        "kopf",
        "Update",
        "apps/v1",
    )
    assert ("f:spec", "f:replicas") in from_fields_v1(entry["fieldsV1"])


def test_update_moves_changed_fields_and_forgets_removed_ones() -> None:
    live = apply(None, deployment(env={"A": "1"}))
    new = copy.deepcopy(live)
    new["spec"]["replicas"] = 7
    del container(new)["env"]
    result = track_update("apps/v1", "Deployment", live, new, "kubectl-edit", now=T2)
    owners = managers(result)
    assert owners["kubectl-edit"] == {("f:spec", "f:replicas")}
    assert ("f:spec", "f:replicas") not in owners["kubectl"]
    assert not any("f:env" in path for path in owners["kubectl"])


def test_status_subresource_writes_get_their_own_entry() -> None:
    live = apply(None, deployment())
    new = {**copy.deepcopy(live), "status": {"replicas": 2}}
    result = track_update(
        "apps/v1", "Deployment", live, new, "kube-controller-manager", subresource="status"
    )
    entry = next(e for e in result["metadata"]["managedFields"] if e.get("subresource"))
    assert (entry["manager"], entry["subresource"]) == ("kube-controller-manager", "status")
    assert entry["fieldsV1"] == {"f:status": {"f:replicas": {}}}


def test_unchanged_update_keeps_live_managed_fields() -> None:
    live = apply(None, deployment())
    assert track_update("apps/v1", "Deployment", live, copy.deepcopy(live), "kopf", now=T2) == live


def test_empty_managed_fields_in_a_request_reset_them() -> None:
    live = apply(None, deployment())
    new = copy.deepcopy(live)
    new["metadata"]["managedFields"] = []
    new["spec"]["replicas"] = 3
    result = track_update("apps/v1", "Deployment", live, new, "kubectl-edit")
    assert list(managers(result)) == ["kubectl-edit"]


@pytest.mark.parametrize(
    ("user_agent", "manager"),
    [
        ("kubectl/v1.33.9 (linux/amd64) kubernetes/abcdef", "kubectl"),
        ("kopf/1.38.0", "kopf"),
        ("OpenAPI-Generator/33.1.0/python", "OpenAPI-Generator"),
        ("curl", "curl"),
    ],
)
def test_default_field_manager_is_the_user_agent_prefix(user_agent: str, manager: str) -> None:
    assert default_field_manager(user_agent) == manager


def test_fieldsv1_round_trip_marks_members_with_children() -> None:
    item = ("f:spec", "f:ports", 'k:{"port":80,"protocol":"TCP"}')
    paths = {item, (*item, "f:port"), ("f:metadata", "f:finalizers", 'v:"a"')}
    encoded = to_fields_v1(paths)
    assert encoded["f:spec"]["f:ports"]['k:{"port":80,"protocol":"TCP"}'] == {".": {}, "f:port": {}}
    assert from_fields_v1(encoded) == paths
