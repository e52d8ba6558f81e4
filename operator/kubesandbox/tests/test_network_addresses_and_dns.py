"""Cluster names, their rewriting in strings, the hosts file, and pod addresses."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from kubesandbox.network.addresses import AddressPool
from kubesandbox.network.dns import (
    HostsFile,
    pod_records,
    resolve,
    rewrite_names,
    service_records,
)

RECORDS = {
    "job-node-0.job.ns.svc.cluster.local": "127.10.0.1",
    "web.ns.svc.cluster.local": "127.96.0.10",
    "web.other.svc.cluster.local": "127.96.0.11",
}


@pytest.mark.parametrize(
    ("name", "namespace", "expected"),
    [
        ("job-node-0.job", "ns", "127.10.0.1"),
        ("job-node-0.job.ns.svc.cluster.local.", "x", "127.10.0.1"),
        ("web", "ns", "127.96.0.10"),
        ("web", "other", "127.96.0.11"),
        ("web.other", "ns", "127.96.0.11"),
        ("web.other.svc", "ns", "127.96.0.11"),
        ("example.com", "ns", None),
    ],
)
def test_resolve_follows_the_pod_search_path(
    name: str, namespace: str, expected: str | None
) -> None:
    assert resolve(name, namespace, RECORDS) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("--rdzv-endpoint=job-node-0.job:29500", "--rdzv-endpoint=127.10.0.1:29500"),
        ("http://web.other.svc:80/x", "http://127.96.0.11:80/x"),
        ("web", "web"),  # single labels resolve at run time, never by rewriting
        ("train.py", "train.py"),
        ("/data/job-node-0.job", "/data/127.10.0.1"),
        ("xjob-node-0.job", "xjob-node-0.job"),
    ],
)
def test_rewrite_names_replaces_dotted_cluster_names(text: str, expected: str) -> None:
    assert rewrite_names(text, "ns", RECORDS) == expected


def _pod(**spec: Any) -> Any:
    return {
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": spec,
        "status": {"podIP": "127.10.0.3", "phase": "Running"},
    }


def test_a_pod_with_a_subdomain_gets_a_name() -> None:
    assert pod_records(_pod(hostname="h", subdomain="s")) == {
        "h.s.ns.svc.cluster.local": "127.10.0.3"
    }
    assert pod_records(_pod(subdomain="s")) == {"p.s.ns.svc.cluster.local": "127.10.0.3"}
    assert pod_records(_pod(hostname="h")) == {}


def test_a_headless_service_names_its_first_ready_pod() -> None:
    service = {"metadata": {"name": "s", "namespace": "ns"}, "spec": {"clusterIP": "None"}}
    assert service_records(service, ["127.10.0.9", "127.10.0.2"]) == {
        "s.ns.svc.cluster.local": "127.10.0.2"
    }
    assert service_records(service, []) == {}


def test_the_address_pool_reuses_released_addresses() -> None:
    pool = AddressPool()
    assert [pool.allocate(o) for o in "abc"] == ["127.10.0.1", "127.10.0.2", "127.10.0.3"]
    assert pool.allocate("a") == "127.10.0.1"
    pool.release("b")
    assert pool.allocate("d") == "127.10.0.2"


def test_the_hosts_file_holds_every_source_records(tmp_path: Path) -> None:
    hosts = HostsFile(tmp_path / "hosts")
    hosts.set("pod", {"a.s.ns.svc.cluster.local": "127.10.0.1"})
    hosts.set("svc", {"s.ns.svc.cluster.local": "127.96.0.1"})
    hosts.set("pod", {})
    assert (tmp_path / "hosts").read_text() == "127.96.0.1 s.ns.svc.cluster.local\n"


async def test_a_stream_of_changes_is_written_at_most_once_per_interval(tmp_path: Path) -> None:
    hosts = HostsFile(tmp_path / "hosts", interval=0.5)  # written empty: changes now wait
    hosts.set("a", {"a.s.ns.svc.cluster.local": "127.10.0.1"})
    hosts.set("b", {"b.s.ns.svc.cluster.local": "127.10.0.2"})
    assert (tmp_path / "hosts").read_text() == ""
    assert set(hosts.records) == {"a.s.ns.svc.cluster.local", "b.s.ns.svc.cluster.local"}
    await asyncio.sleep(1.0)
    assert (tmp_path / "hosts").read_text().splitlines() == [
        "127.10.0.1 a.s.ns.svc.cluster.local",
        "127.10.0.2 b.s.ns.svc.cluster.local",
    ]
