"""The chart's RBAC: least privilege, within a reviewed allow-list, scoped to the watched
namespaces when there is a list. `support.helmchart.grants()` is the helper for later comparisons
with the requests the operator really makes (the sandbox's request log)."""

from __future__ import annotations

from typing import Any

import pytest

from support.helmchart import NAMESPACE, grants, of_kind, only, render, requires_helm, rule_grants
from support.rbac import (
    ALLOWED,
    CLUSTER_SCOPED_ALLOWED,
    LEADER_ELECTION_ALLOWED,
    NAMESPACED_ALLOWED,
    REQUIRED,
    verbs,
)

pytestmark = requires_helm


FORBIDDEN_VERBS = {"*", "escalate", "bind", "impersonate", "deletecollection", "update"}
FORBIDDEN_RESOURCES = {
    "*",
    "secrets",
    "configmaps",
    "pods/exec",
    "pods/attach",
    "pods/portforward",
    "pods/proxy",
    "services/proxy",
    "nodes/proxy",
    "serviceaccounts/token",
    "roles",
    "rolebindings",
    "clusterroles",
    "clusterrolebindings",
    "customresourcedefinitions/status",
}

NAMESPACED = {"watch": {"namespaces": ["team-a", "team-b"]}}


def roles(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] in ("ClusterRole", "Role")]


def watch_roles(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The Roles of the watched namespaces (not the leader election's own)."""
    return [r for r in of_kind(objects, "Role") if not r["metadata"]["name"].endswith("-election")]


@pytest.mark.parametrize("values", [{}, NAMESPACED], ids=["cluster-wide", "namespaced"])
def test_grant_is_within_the_reviewed_allow_list(values: dict[str, Any]) -> None:
    granted = grants(render(values))
    assert granted - ALLOWED == set()
    assert granted >= REQUIRED


@pytest.mark.parametrize("values", [{}, NAMESPACED], ids=["cluster-wide", "namespaced"])
def test_no_wildcards_escalation_or_secrets(values: dict[str, Any]) -> None:
    for role in roles(render(values)):
        for rule in role["rules"]:
            assert "*" not in rule["apiGroups"], rule
            assert not set(rule["resources"]) & FORBIDDEN_RESOURCES, rule
            # update only where the rule names the objects: the release's own lease
            allowed = {"update"} if rule.get("resourceNames") else set()
            assert not set(rule["verbs"]) & (FORBIDDEN_VERBS - allowed), rule
            assert "nonResourceURLs" not in rule, rule
    assert not [o for o in render(values) if o["kind"] == "ClusterRole" and "aggregationRule" in o]


def test_cluster_wide_grants_everything_in_one_cluster_role() -> None:
    objects = render()
    assert watch_roles(objects) == []
    role = only(objects, "ClusterRole")
    granted = rule_grants(role["rules"])
    assert granted >= NAMESPACED_ALLOWED - verbs("", "namespaces", "list", "watch")
    assert not {g for g in granted if g.resource == "namespaces"}  # kopf lists none cluster-wide


def test_namespace_list_gets_a_role_per_namespace_and_only_cluster_scoped_cluster_rules() -> None:
    objects = render(NAMESPACED)
    cluster_role = only(objects, "ClusterRole")
    assert rule_grants(cluster_role["rules"]) <= CLUSTER_SCOPED_ALLOWED
    role_namespaces = sorted(r["metadata"]["namespace"] for r in watch_roles(objects))
    assert role_namespaces == ["team-a", "team-b"]
    for role in watch_roles(objects):
        assert rule_grants(role["rules"]) <= NAMESPACED_ALLOWED
        assert (
            rule_grants(role["rules"])
            >= REQUIRED - CLUSTER_SCOPED_ALLOWED - LEADER_ELECTION_ALLOWED
        )


def test_bindings_bind_the_operator_service_account_to_the_roles() -> None:
    objects = render(NAMESPACED)
    account = only(objects, "ServiceAccount")["metadata"]
    pod = only(objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == account["name"]
    subject = {"kind": "ServiceAccount", "name": account["name"], "namespace": NAMESPACE}
    bindings = of_kind(objects, "ClusterRoleBinding") + of_kind(objects, "RoleBinding")
    assert len(bindings) == 4  # cluster-wide, team-a, team-b, the leader election's
    for binding in bindings:
        assert binding["subjects"] == [subject]
        role_kind = "ClusterRole" if binding["kind"] == "ClusterRoleBinding" else "Role"
        assert binding["roleRef"]["kind"] == role_kind
        [role] = [
            r
            for r in of_kind(objects, role_kind)
            if r["metadata"]["name"] == binding["roleRef"]["name"]
            and r["metadata"].get("namespace") == binding["metadata"].get("namespace")
        ]
        assert role


def test_optional_permissions_can_be_turned_off() -> None:
    granted = grants(render({"rbac": {"listNodes": False, "gangScheduling": False}}))
    assert not {g for g in granted if g.resource in ("nodes", "podgroups")}


def test_no_rbac_objects_when_rbac_create_is_false() -> None:
    kinds = {o["kind"] for o in render({"rbac": {"create": False}})}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
