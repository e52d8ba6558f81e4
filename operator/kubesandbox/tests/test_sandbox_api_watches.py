"""Watches and paging of the sandbox API as the kubernetes client and kubectl use them:
resuming from a resourceVersion, 410 when compacted, bookmarks, watch lists, limit and
continue."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config, watch
from sandbox_objects import configmap

pytestmark = pytest.mark.integration


def test_watch_resumes_from_a_resource_version(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    start = core.list_namespaced_config_map(ns).metadata.resource_version
    core.create_namespaced_config_map(ns, configmap("w1"))
    core.patch_namespaced_config_map("w1", ns, {"data": {"k": "2"}})
    core.delete_namespaced_config_map("w1", ns)
    stream = watch.Watch().stream(
        core.list_namespaced_config_map, ns, resource_version=start, timeout_seconds=2
    )
    seen = [(e["type"], e["object"].metadata.name) for e in stream]
    assert seen == [("ADDED", "w1"), ("MODIFIED", "w1"), ("DELETED", "w1")]


def test_watch_from_a_compacted_resource_version_is_410(
    sandbox_factory: Any, tmp_path: Path
) -> None:
    with sandbox_factory(tmp_path, "--watch-history", "5") as small:
        api = config.new_client_from_config(str(small.kubeconfig))
        core = client.CoreV1Api(api)
        start = core.list_namespaced_config_map("default").metadata.resource_version
        for i in range(10):
            core.create_namespaced_config_map("default", configmap(f"n{i}"))
        response = core.list_namespaced_config_map(
            "default", watch=True, resource_version=start, _preload_content=False
        )
        event = json.loads(response.readline())
    assert event["type"] == "ERROR"
    assert event["object"]["code"] == 410
    assert event["object"]["reason"] == "Expired"


def test_paging_with_limit_and_continue(sandbox: Any, api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    for i in range(5):
        core.create_namespaced_config_map(ns, configmap(f"p{i}"))
    first = core.list_namespaced_config_map(ns, limit=2)
    assert [i.metadata.name for i in first.items] == ["p0", "p1"]
    assert first.metadata.remaining_item_count == 3
    rest = core.list_namespaced_config_map(ns, limit=10, _continue=first.metadata._continue)
    assert [i.metadata.name for i in rest.items] == ["p2", "p3", "p4"]
    assert rest.metadata._continue is None
    chunked = sandbox.kubectl("get", "cm", "-n", ns, "--chunk-size=2", "-v=6", "-o", "name")
    assert len(chunked.stdout.split()) == 5
    assert chunked.stderr.count("limit=2") == 3  # three pages of at most two


def test_watch_sends_bookmarks_and_ends_at_its_timeout(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    start = time.monotonic()
    events = list(
        watch.Watch().stream(
            core.list_namespaced_config_map,
            ns,
            allow_watch_bookmarks=True,
            timeout_seconds=2,
            _request_timeout=10,
        )
    )
    assert 1.5 < time.monotonic() - start < 6
    assert [e["type"] for e in events][-1:] == ["BOOKMARK"]


def test_watch_list_ends_its_initial_events_with_a_bookmark(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(ns, configmap("wl"))
    response = core.list_namespaced_config_map(
        ns,
        watch=True,
        send_initial_events=True,
        resource_version_match="NotOlderThan",
        allow_watch_bookmarks=True,
        timeout_seconds=1,
        _preload_content=False,
    )
    events = [json.loads(line) for line in response.read().splitlines()]
    assert [e["type"] for e in events[:2]] == ["ADDED", "BOOKMARK"]
    annotations = events[1]["object"]["metadata"]["annotations"]
    assert annotations == {"k8s.io/initial-events-end": "true"}
