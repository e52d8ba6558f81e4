"""Defaults the sandbox's API server fills in on create, as kube-apiserver does."""

from __future__ import annotations

from typing import Any

from kubesandbox.apiserver.cluster.defaults import apply_create_defaults
from kubesandbox.network.addresses import AddressLeases


def _service(name: str) -> dict[str, Any]:
    body = {"kind": "Service", "metadata": {"name": name}, "spec": {"ports": [{"port": 80}]}}
    apply_create_defaults(body)
    return body


def _after(address: str, k: int) -> str:
    a, b, c, d = (int(x) for x in address.split("."))
    n = c * 250 + d - 1 + k
    return f"{a}.{b}.{n // 250}.{n % 250 + 1}"


def test_a_service_gets_a_loopback_cluster_ip_and_defaulted_ports() -> None:
    spec = _service("web")["spec"]
    assert spec["clusterIP"].startswith("127.96.")
    assert spec["clusterIPs"] == [spec["clusterIP"]]
    assert spec["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80}]


def test_cluster_ips_leased_by_another_sandbox_are_skipped() -> None:
    first = _service("a")["spec"]["clusterIP"]
    other = AddressLeases()  # another sandbox on this host
    # The next addresses, those no sandbox of this host (other test runs included) holds.
    taken = [a for a in (_after(first, k) for k in range(1, 9)) if other.claim(a, busy=set())]
    try:
        assert taken
        second = _service("b")["spec"]["clusterIP"]
        assert second not in taken
        assert second != first
    finally:
        other.close()


def test_a_job_gets_kubes_defaults_and_a_selector_on_its_uid() -> None:
    body: dict[str, Any] = {
        "kind": "Job",
        "metadata": {"name": "pi", "uid": "u1"},
        "spec": {"template": {"metadata": {"labels": {"app": "pi"}}, "spec": {}}},
    }
    apply_create_defaults(body)
    spec = body["spec"]
    assert (spec["completions"], spec["parallelism"], spec["backoffLimit"]) == (1, 1, 6)
    assert (spec["completionMode"], spec["suspend"]) == ("NonIndexed", False)
    assert spec["podReplacementPolicy"] == "TerminatingOrFailed"
    assert spec["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}}
    assert spec["template"]["metadata"]["labels"] == {
        "app": "pi",
        "batch.kubernetes.io/controller-uid": "u1",
        "batch.kubernetes.io/job-name": "pi",
        "controller-uid": "u1",
        "job-name": "pi",
    }
    assert body["metadata"]["labels"] == spec["template"]["metadata"]["labels"]


def test_a_parallel_job_without_completions_is_a_work_queue() -> None:
    body: dict[str, Any] = {"kind": "Job", "metadata": {"name": "q", "uid": "u"}}
    body["spec"] = {"parallelism": 3, "template": {"spec": {}}}
    apply_create_defaults(body)
    assert "completions" not in body["spec"]


def test_a_daemon_set_rolls_one_pod_at_a_time_by_default() -> None:
    body: dict[str, Any] = {"kind": "DaemonSet", "metadata": {"name": "d"}, "spec": {}}
    apply_create_defaults(body)
    assert body["spec"]["updateStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0},
    }
    assert body["status"]["desiredNumberScheduled"] == 0
