"""The chart's replicas and their leader election: two replicas rolled one at a time, a
PodDisruptionBudget, a Lease the operator may renew and nothing more, the election settings
in the environment (as the operator reads them), and replicas spread over nodes."""

from __future__ import annotations

from typing import Any

import pytest

from bigmodel.controller.election import ElectionSettings
from support.helmchart import (
    NAMESPACE,
    RELEASE,
    helm,
    of_kind,
    only,
    render,
    requires_helm,
    rule_grants,
    values_args,
)
from support.rbac import verbs

pytestmark = requires_helm

FULLNAME = f"{RELEASE}-bigmodel-operator"
SINGLE = {"replicaCount": 1, "leaderElection": {"enabled": False}}


def pod_spec(objects: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = only(objects, "Deployment")["spec"]["template"]["spec"]
    return spec


def env_of(objects: list[dict[str, Any]]) -> dict[str, Any]:
    """The operator container's environment: plain values, and `valueFrom` as such."""
    container = pod_spec(objects)["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_two_replicas_by_default_updated_with_a_surge_and_never_one_less() -> None:
    spec = only(render(), "Deployment")["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }


def test_a_disruption_budget_keeps_one_replica_of_the_operator_pods() -> None:
    objects = render()
    budget = only(objects, "PodDisruptionBudget")
    assert budget["metadata"]["namespace"] == NAMESPACE
    assert budget["spec"]["minAvailable"] == 1
    selector = only(objects, "Deployment")["spec"]["selector"]
    assert budget["spec"]["selector"] == selector


def test_a_single_replica_gets_no_disruption_budget() -> None:
    assert of_kind(render({"replicaCount": 1}), "PodDisruptionBudget") == []
    assert of_kind(render({"podDisruptionBudget": {"enabled": False}}), "PodDisruptionBudget") == []


def test_the_environment_names_the_release_lease_as_the_operator_reads_it() -> None:
    env = env_of(render({"leaderElection": {"leaseDuration": 30, "renewDeadline": 20}}))
    plain = {k: v for k, v in env.items() if isinstance(v, str)}
    settings = ElectionSettings.from_env(plain)
    assert settings.enabled
    assert (settings.lease_name, settings.lease_namespace) == (FULLNAME, NAMESPACE)
    assert (settings.lease_duration, settings.renew_deadline, settings.retry_period) == (
        30.0,
        20.0,
        2.0,
    )


def test_the_identity_comes_from_the_pod_name_of_the_downward_api() -> None:
    env = env_of(render())
    assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}


def test_a_single_replica_may_run_without_election_and_without_a_lease_role() -> None:
    objects = render(SINGLE)
    assert only(objects, "Deployment")["spec"]["replicas"] == 1
    env = env_of(objects)
    assert not ElectionSettings.from_env(
        {"BIGMODEL_LEADER_ELECTION": env["BIGMODEL_LEADER_ELECTION"]}
    ).enabled
    assert "BIGMODEL_LEADER_ELECTION_LEASE_NAME" not in env
    assert not [r for r in of_kind(objects, "Role") if r["metadata"]["name"].endswith("-election")]


def test_the_lease_role_renews_only_the_release_lease_in_its_namespace() -> None:
    objects = render({"watch": {"namespaces": ["team-a"]}})
    [role] = [r for r in of_kind(objects, "Role") if r["metadata"]["name"].endswith("-election")]
    assert role["metadata"]["namespace"] == NAMESPACE
    assert rule_grants(role["rules"]) == verbs(
        "coordination.k8s.io", "leases", "create", "get", "update"
    )
    named = [rule for rule in role["rules"] if {"get", "update"} & set(rule["verbs"])]
    assert [rule["resourceNames"] for rule in named] == [[FULLNAME]]
    [binding] = [
        b
        for b in of_kind(objects, "RoleBinding")
        if b["roleRef"]["name"] == role["metadata"]["name"]
    ]
    assert binding["metadata"]["namespace"] == NAMESPACE
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": FULLNAME, "namespace": NAMESPACE}
    ]


def test_replicas_prefer_distinct_nodes() -> None:
    objects = render()
    [term] = pod_spec(objects)["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    selector = only(objects, "Deployment")["spec"]["selector"]
    assert term["podAffinityTerm"]["labelSelector"] == selector


def test_an_affinity_of_the_values_replaces_the_default_spread() -> None:
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": "pool", "operator": "In", "values": ["system"]}]}]}}}  # fmt: skip
    assert pod_spec(render({"affinity": affinity}))["affinity"] == affinity


BAD_ELECTIONS = [
    (
        {"replicaCount": 2, "leaderElection": {"enabled": False}},
        "replicaCount above 1 needs leaderElection.enabled",
    ),
    (
        {"leaderElection": {"renewDeadline": 15}},
        "leaderElection.renewDeadline (15) must be below leaderElection.leaseDuration (15)",
    ),
    (
        {"leaderElection": {"retryPeriod": 9}},
        "leaderElection.retryPeriod (9) must be below leaderElection.renewDeadline (10) / 1.2",
    ),
    ({"replicaCount": 0}, "at '/replicaCount': minimum: got 0, want 1"),
    ({"podDisruptionBudget": {"minAvailable": "half"}}, "at '/podDisruptionBudget/minAvailable'"),
]


@pytest.mark.parametrize(("values", "message"), BAD_ELECTIONS, ids=[m for _, m in BAD_ELECTIONS])
def test_bad_election_values_are_refused_naming_them(values: dict[str, Any], message: str) -> None:
    done = helm("template", "bm", *values_args(values))
    assert done.returncode != 0
    assert message in done.stderr
