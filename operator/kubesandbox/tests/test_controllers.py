"""Decisions of the sandbox's Deployment, ReplicaSet and Endpoints controllers."""

from __future__ import annotations

from typing import Any

import pytest

from kubesandbox.controllers.deployment import (
    Scale,
    rolling_plan,
    surge_and_unavailable,
    template_hash,
)
from kubesandbox.controllers.endpoints import backends, subsets, target_port
from kubesandbox.controllers.replicaset import deletion_order


@pytest.mark.parametrize(
    ("replicas", "rolling", "expected"),
    [
        (4, {}, (1, 1)),
        (2, {}, (1, 0)),
        (10, {"maxSurge": 3, "maxUnavailable": "50%"}, (3, 5)),
        (3, {"maxSurge": 0, "maxUnavailable": 0}, (0, 1)),
    ],
)
def test_surge_and_unavailable(replicas: int, rolling: Any, expected: tuple[int, int]) -> None:
    deployment = {"spec": {"replicas": replicas, "strategy": {"rollingUpdate": rolling}}}
    assert surge_and_unavailable(deployment) == expected


def test_a_rolling_update_never_drops_below_min_available_nor_exceeds_surge() -> None:
    replicas, surge, unavailable = 2, 1, 0
    new, old = Scale(0, 0), [Scale(2, 2)]
    steps = []
    for _ in range(10):
        new_spec, old_specs = rolling_plan(replicas, surge, unavailable, new, old)
        assert new_spec + sum(old_specs) <= replicas + surge
        # pods become available right after each step
        new = Scale(new_spec, new_spec)
        old = [Scale(s, min(s, o.available)) for s, o in zip(old_specs, old, strict=True)]
        assert new.available + sum(o.available for o in old) >= replicas - unavailable
        steps.append((new_spec, old_specs[0]))
    assert steps[:4] == [(1, 2), (1, 1), (2, 1), (2, 0)]
    assert steps[-1] == (2, 0)


def test_scaling_without_a_rollout_sets_the_new_replica_set() -> None:
    assert rolling_plan(5, 1, 1, Scale(2, 2), []) == (5, [])
    assert rolling_plan(1, 1, 0, Scale(3, 3), [Scale(0, 0)]) == (1, [0])


def test_template_hash_is_stable_and_changes_with_the_template() -> None:
    template = {"spec": {"containers": [{"name": "c", "image": "a"}]}}
    assert template_hash(template) == template_hash({**template})
    assert template_hash(template) != template_hash({"spec": {"containers": []}})


def _pod(name: str, ip: str, ready: bool, node: str = "n", deleting: bool = False) -> Any:
    meta: Any = {"name": name, "namespace": "ns", "uid": name, "creationTimestamp": name}
    if deleting:
        meta["deletionTimestamp"] = "t"
    return {
        "metadata": meta,
        "spec": {
            "nodeName": node,
            "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 8000}]}],
        },
        "status": {
            "podIP": ip,
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": str(ready)}],
        },
    }


SERVICE = {"spec": {"ports": [{"name": "web", "port": 80, "targetPort": "http"}]}}


def test_a_named_target_port_resolves_through_the_container_ports() -> None:
    assert target_port({"port": 80, "targetPort": "http"}, _pod("a", "ip", True)) == 8000
    assert target_port({"port": 80}, _pod("a", "ip", True)) == 80


def test_subsets_split_ready_and_not_ready_and_drop_terminating_pods() -> None:
    pods = [_pod("a", "1", True), _pod("b", "2", False), _pod("c", "3", True, deleting=True)]
    [subset] = subsets(SERVICE, pods)
    assert [a["ip"] for a in subset["addresses"]] == ["1"]
    assert [a["ip"] for a in subset["notReadyAddresses"]] == ["2"]
    assert subset["ports"] == [{"name": "web", "port": 8000, "protocol": "TCP"}]


def test_backends_are_the_ready_active_pods() -> None:
    pods = [_pod("a", "1", True), _pod("b", "2", False), _pod("c", "3", True, deleting=True)]
    assert backends(SERVICE, pods) == {80: [("1", 8000)]}


def test_scale_down_removes_unscheduled_then_unready_then_newest_pods() -> None:
    pods = [
        _pod("1", "", True),
        _pod("2", "", False),
        _pod("3", "", True),
        _pod("4", "", True, node=""),
    ]
    assert [p["metadata"]["name"] for p in deletion_order(pods)] == ["4", "2", "3", "1"]
