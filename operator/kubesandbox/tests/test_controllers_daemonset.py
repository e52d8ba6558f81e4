"""Decisions of the sandbox's DaemonSet controller: which nodes get a daemon pod (selector,
affinity, taints and tolerations: simulated nodes are tainted), the pod it creates, rolling
replacement within maxUnavailable, and the status."""

from __future__ import annotations

from typing import Any

from kubesandbox.controllers.daemonset import (
    REVISION_LABEL,
    daemon_pod,
    decide,
    should_run,
    target_node,
)
from kubesandbox.controllers.deployment import template_hash
from kubesandbox.placement import SIMULATED_TAINT

SIMULATED = {"key": SIMULATED_TAINT, "value": "true", "effect": "NoSchedule"}
TOLERATE_ALL = [{"operator": "Exists"}]


def node(name: str, taints: Any = (), **labels: str) -> Any:
    return {"metadata": {"name": name, "labels": labels}, "spec": {"taints": list(taints)}}


NODES = [node("proc-0"), node("proc-1"), node("sim-0", [SIMULATED], simulated="true")]


def daemon_set(strategy: Any = None, **template_spec: Any) -> Any:
    template = {
        "metadata": {"labels": {"app": "agent"}},
        "spec": {"containers": [{"name": "agent", "image": "agent"}], **template_spec},
    }
    spec: Any = {"selector": {"matchLabels": {"app": "agent"}}, "template": template}
    spec["updateStrategy"] = strategy or {"type": "RollingUpdate"}
    meta = {"name": "agent", "namespace": "ns", "uid": "ds1", "generation": 2}
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": meta, "spec": spec}


def running(ds: Any, name: str, node_name: str, ready: bool = True, current: bool = True) -> Any:
    pod = daemon_pod(ds, node_name)
    pod["metadata"] |= {"name": name, "creationTimestamp": f"2026-12-07T12:00:0{len(name)}Z"}
    if not current:
        pod["metadata"]["labels"][REVISION_LABEL] = "old"
    pod["spec"]["nodeName"] = node_name
    pod["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": str(ready)}]}
    return pod


def test_a_daemon_set_runs_on_every_process_node_but_not_on_tainted_simulated_ones() -> None:
    assert [n["metadata"]["name"] for n in NODES if should_run(daemon_set(), n)] == [
        "proc-0",
        "proc-1",
    ]


def test_a_daemon_set_that_tolerates_the_taint_runs_on_simulated_nodes_too() -> None:
    ds = daemon_set(tolerations=TOLERATE_ALL)
    assert all(should_run(ds, n) for n in NODES)


def test_a_node_selector_picks_the_nodes_but_does_not_lift_a_taint() -> None:
    assert not should_run(daemon_set(nodeSelector={"simulated": "true"}), NODES[2])
    picky = daemon_set(nodeSelector={"simulated": "true"}, tolerations=TOLERATE_ALL)
    assert [n["metadata"]["name"] for n in NODES if should_run(picky, n)] == ["sim-0"]


def test_a_daemon_pod_is_pinned_to_its_node_and_tolerates_node_trouble() -> None:
    pod = daemon_pod(daemon_set(), "proc-1")
    assert target_node(pod) == "proc-1"
    assert pod["metadata"]["generateName"] == "agent-"
    assert pod["metadata"]["labels"][REVISION_LABEL] == template_hash(
        daemon_set()["spec"]["template"]
    )
    keys = {t["key"] for t in pod["spec"]["tolerations"]}
    assert "node.kubernetes.io/unreachable" in keys and "node.kubernetes.io/not-ready" in keys
    assert pod["metadata"]["ownerReferences"][0]["uid"] == "ds1"


def test_missing_pods_are_created_and_misplaced_or_extra_ones_deleted() -> None:
    ds = daemon_set()
    pods = [
        running(ds, "a", "proc-0"),
        running(ds, "bb", "proc-0"),  # a second one on proc-0: the newer goes
        running(ds, "ccc", "sim-0"),  # the taint is not tolerated
    ]
    plan = decide(ds, NODES, pods)
    assert plan.create == ("proc-1",)
    assert sorted(plan.delete) == ["bb", "ccc"]
    assert plan.status["desiredNumberScheduled"] == 2
    assert plan.status["currentNumberScheduled"] == 1
    assert plan.status["numberMisscheduled"] == 1


def test_finished_pods_are_deleted_and_replaced() -> None:
    ds = daemon_set()
    failed = running(ds, "a", "proc-0") | {"status": {"phase": "Failed"}}
    plan = decide(ds, NODES[:1], [failed])
    assert (plan.create, plan.delete) == (("proc-0",), ("a",))


def test_outdated_unready_pods_are_replaced_whatever_the_budget() -> None:
    ds = daemon_set()
    pods = [
        running(ds, "a", "proc-0", ready=False, current=False),
        running(ds, "bb", "proc-1", ready=False, current=False),
    ]
    assert sorted(decide(ds, NODES, pods).delete) == ["a", "bb"]


def test_outdated_pods_are_replaced_within_max_unavailable() -> None:
    ds = daemon_set()
    pods = [running(ds, "a", "proc-0", current=False), running(ds, "bb", "proc-1", current=False)]
    plan = decide(ds, NODES, pods)
    assert plan.delete == ("a",)
    wider = daemon_set({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "100%"}})
    assert sorted(decide(wider, NODES, pods).delete) == ["a", "bb"]


def test_on_delete_leaves_outdated_pods_running() -> None:
    ds = daemon_set({"type": "OnDelete"})
    pods = [
        running(ds, "a", "proc-0", current=False),
        running(ds, "bb", "proc-1", ready=False, current=False),
    ]
    plan = decide(ds, NODES, pods)
    assert plan.delete == ()
    assert "updatedNumberScheduled" not in plan.status


def test_the_status_counts_ready_updated_and_available_pods() -> None:
    ds = daemon_set()
    pods = [running(ds, "a", "proc-0"), running(ds, "bb", "proc-1", ready=False)]
    assert decide(ds, NODES, pods).status == {
        "currentNumberScheduled": 2,
        "desiredNumberScheduled": 2,
        "numberMisscheduled": 0,
        "numberReady": 1,
        "observedGeneration": 2,
        "updatedNumberScheduled": 2,
        "numberAvailable": 1,
        "numberUnavailable": 1,
    }
