"""Scheduling decisions: filters in kube-scheduler's order and its Unschedulable message."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from kubesandbox import legacy
from kubesandbox.kubelet.scheduler import (
    fit_failures,
    pod_requests,
    schedule,
    unschedulable_message,
)
from kubesandbox.placement import SIMULATED_TAINT


def node(name: str, gpus: int = 1, labels: dict[str, str] | None = None, taints: Any = ()) -> Any:
    return {
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"taints": list(taints)},
        "status": {
            "allocatable": {"cpu": "2", "memory": "4Gi", "pods": "110", "nvidia.com/gpu": str(gpus)}
        },
    }


def pod(**spec: Any) -> Any:
    spec.setdefault("containers", [{"name": "c"}])
    return {"metadata": {"name": "p"}, "spec": spec}


def gpus(n: int) -> list[Any]:
    return [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": str(n)}}}]


TAINT = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}
AFFINITY = {
    "nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}
            ]
        }
    }
}


@pytest.mark.parametrize(
    ("the_pod", "the_node", "expected"),
    [
        (pod(), node("n"), []),
        (pod(containers=gpus(2)), node("n"), ["Insufficient nvidia.com/gpu"]),
        (
            pod(nodeSelector={"zone": "a"}),
            node("n", labels={"zone": "b"}),
            ["node(s) didn't match Pod's node affinity/selector"],
        ),
        (pod(affinity=AFFINITY), node("n", labels={"zone": "a"}), []),
        (pod(affinity=AFFINITY), node("n"), ["node(s) didn't match Pod's node affinity/selector"]),
        (pod(), node("n", taints=[TAINT]), ["node(s) had untolerated taint {dedicated: gpu}"]),
        (
            pod(tolerations=[{"key": "dedicated", "operator": "Exists"}]),
            node("n", taints=[TAINT]),
            [],
        ),
        (
            pod(tolerations=[{"key": "dedicated", "value": "cpu"}]),
            node("n", taints=[TAINT]),
            ["node(s) had untolerated taint {dedicated: gpu}"],
        ),
        (
            pod(containers=[{"name": "c", "resources": {"requests": {"cpu": "3"}}}]),
            node("n"),
            ["Insufficient cpu"],
        ),
    ],
)
def test_fit_failures(the_pod: Any, the_node: Any, expected: list[str]) -> None:
    assert fit_failures(the_pod, the_node, {}) == expected


def test_resources_already_requested_on_a_node_count() -> None:
    assert fit_failures(pod(containers=gpus(1)), node("n"), {"nvidia.com/gpu": Decimal(1)}) == [
        "Insufficient nvidia.com/gpu"
    ]


def test_the_simulated_taint_yields_to_a_matching_node_selector() -> None:
    taint = {"key": "kubesandbox.dev/simulated", "value": "true", "effect": "NoSchedule"}
    simulated = node("sim", labels={"type": "simulated"}, taints=[taint])
    assert fit_failures(pod(nodeSelector={"type": "simulated"}), simulated, {}) == []
    assert fit_failures(pod(), simulated, {}) != []


@pytest.mark.parametrize("key", [SIMULATED_TAINT, legacy.old_name(SIMULATED_TAINT)])
def test_a_toleration_of_the_simulated_taint_under_either_key_fits(key: str) -> None:
    taint = {"key": SIMULATED_TAINT, "value": "true", "effect": "NoSchedule"}
    simulated = node("sim", taints=[taint])
    tolerating = pod(tolerations=[{"key": key, "operator": "Exists"}])
    assert fit_failures(tolerating, simulated, {}) == []


def test_the_pod_needs_its_largest_init_container_or_its_containers_sum() -> None:
    spec = {
        "containers": [{"name": "a", "resources": {"requests": {"cpu": "500m"}}}] * 2,
        "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "2", "memory": "1Gi"}}}],
    }
    assert pod_requests(pod(**spec)) == {
        "cpu": Decimal(2),
        "memory": Decimal(2**30),
        "pods": Decimal(1),
    }


def test_unschedulable_message_counts_reasons_sorted() -> None:
    failures = [
        ["Insufficient nvidia.com/gpu"],
        ["Insufficient cpu", "Insufficient nvidia.com/gpu"],
    ]
    assert unschedulable_message(2, failures) == (
        "0/2 nodes are available: 1 Insufficient cpu, 2 Insufficient nvidia.com/gpu."
    )


def test_schedule_picks_the_least_loaded_fitting_node() -> None:
    nodes = [node("a"), node("b"), node("c", gpus=0)]
    used = {"a": {"pods": Decimal(3)}, "b": {"pods": Decimal(1)}}
    assert schedule(pod(containers=gpus(1)), nodes, used).node == "b"


def test_schedule_prefers_the_nodes_of_preferred_node_affinity_before_the_least_loaded() -> None:
    away = {"key": "kubernetes.io/hostname", "operator": "NotIn", "values": ["b"]}
    preferred = [{"weight": 100, "preference": {"matchExpressions": [away]}}]
    affinity = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": preferred}}
    nodes = [node(n, labels={"kubernetes.io/hostname": n}) for n in ("a", "b")]
    used = {"a": {"pods": Decimal(3)}}
    assert schedule(pod(), nodes, used).node == "b"
    assert schedule(pod(affinity=affinity), nodes, used).node == "a"
    assert schedule(pod(affinity=affinity), nodes[1:], used).node == "b"  # only a preference


def test_schedule_explains_why_nothing_fits() -> None:
    decision = schedule(pod(containers=gpus(4)), [node("a"), node("b")], {})
    assert decision.node is None
    assert decision.message == "0/2 nodes are available: 2 Insufficient nvidia.com/gpu."
