"""The operator's API client: where it connects (KUBECONFIG wins over in-cluster settings,
as in client-go), and the failed requests it counts."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import kubernetes
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from bigmodel.controller import k8s
from bigmodel.controller.k8s import (
    CONNECTIONS,
    ApiError,
    Kube,
    kopf_session,
    load_client_config,
)
from bigmodel.telemetry.export import OperatorMetrics

KUBECONFIG = """
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "http://127.0.0.1:6443"}}]
users: [{name: u, user: {token: s3cret}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
"""


@pytest.fixture
def kubeconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG)
    monkeypatch.setenv("KUBECONFIG", str(path))
    # What a pod (or a sandbox pod) has: the in-cluster address of the API server.
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    return path


def test_kubeconfig_wins_over_the_in_cluster_address(kubeconfig: Path) -> None:
    assert load_client_config().host == "http://127.0.0.1:6443"


async def test_kopf_logs_in_with_the_same_server_and_token_and_bounded_connections(
    kubeconfig: Path,
) -> None:
    info = kopf_session(load_client_config(), watches=5)
    session = info.aiohttp_session
    try:
        assert info.server == "http://127.0.0.1:6443"
        assert session.headers["Authorization"] == "Bearer s3cret"
        assert "User-Agent" not in session.headers  # kopf adds its own
        assert session.connector is not None and session.connector.limit == CONNECTIONS + 5
    finally:
        await session.close()


@asynccontextmanager
async def _served(app: web.Application) -> AsyncIterator[str]:
    """`app` served on a free local port: its URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def refusing() -> AsyncIterator[str]:
    """An API server that serves discovery of v1 pods, answers a create 409 (it exists), a
    delete 404 (it is gone) and anything else 503; its URL."""

    async def answer(request: web.Request) -> web.Response:
        if request.path == "/api/v1":
            return web.json_response({"resources": [{"kind": "Pod", "name": "pods"}]})
        status = {"POST": 409, "DELETE": 404}.get(request.method, 503)
        return web.json_response({"message": "no"}, status=status)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    async with _served(app) as url:
        yield url


def _config(host: str) -> Any:
    """A client configuration for `host` (no kubeconfig: its refresh hook would reset it)."""
    config = kubernetes.client.Configuration()
    config.host = host
    return config


async def test_failed_requests_are_counted_by_method_and_code(refusing: str) -> None:
    config = _config(refusing)
    metrics = OperatorMetrics(CollectorRegistry())
    kube = Kube(config, metrics)
    try:
        with pytest.raises(ApiError):
            await kube.request("PATCH", "/api/v1/namespaces/ns/pods/p", {})
        config.host = "http://127.0.0.1:9"  # nothing listens: no answer at all
        with pytest.raises(aiohttp.ClientError):
            await kube.request("GET", "/api/v1/pods")
    finally:
        await kube.close()
    count = metrics.registry.get_sample_value
    assert count("bigmodel_api_errors_total", {"method": "PATCH", "code": "503"}) == 1
    assert count("bigmodel_api_errors_total", {"method": "GET", "code": "connection"}) == 1


async def test_a_create_that_exists_and_a_delete_that_is_gone_are_no_errors(
    refusing: str,
) -> None:
    config = _config(refusing)
    metrics = OperatorMetrics(CollectorRegistry())
    kube = Kube(config, metrics)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ns"}}
    try:
        assert await kube.create(pod) is False
        await kube.delete(pod, uid="u")
    finally:
        await kube.close()
    errors = [
        s for f in metrics.registry.collect() if f.name == "bigmodel_api_errors" for s in f.samples
    ]
    assert errors == []


def test_kopfs_session_has_room_for_a_watch_of_every_resource_it_handles() -> None:
    # kopf's registries are not public API: this fails loudly if they change.
    import kopf

    from bigmodel.controller import context, kopf_settings  # noqa: F401
    from bigmodel.controller.job import handlers as job_handlers  # noqa: F401
    from bigmodel.controller.service import handlers as service_handlers  # noqa: F401

    registry = kopf.get_default_registry()
    kinds = (registry._watching, registry._spawning, registry._indexing, registry._changing)
    watched = {selector for kind in kinds for selector in kind.get_all_selectors()}
    assert len(watched) == kopf_settings.WATCHED_RESOURCES


async def test_the_authorization_header_is_read_once_per_refresh_period(
    refusing: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(refusing)
    config.api_key = {"authorization": "t1"}
    config.api_key_prefix = {"authorization": "Bearer"}
    asked: list[int] = []
    config.refresh_api_key_hook = lambda _: asked.append(1)
    kube = Kube(config)
    try:
        await kube.request("GET", "/api/v1")
        await kube.request("GET", "/api/v1")
        assert len(asked) == 1
        monkeypatch.setattr(k8s, "AUTH_REFRESH_SECONDS", 0.0)
        config.api_key = {"authorization": "t2"}  # a rotated token
        assert kube._headers(k8s.JSON)["Authorization"] == "Bearer t2"
        assert len(asked) == 2
    finally:
        await kube.close()


@pytest.fixture
async def watching() -> AsyncIterator[str]:
    """An API server whose pod watch sends two events, the second a line longer than
    aiohttp's readline allows, split across chunks; a watch from version "old" gets 410."""

    async def answer(request: web.Request) -> web.StreamResponse:
        if request.query.get("resourceVersion") == "old":
            return web.json_response({"message": "too old resource version"}, status=410)
        assert request.query["watch"] == "true"
        response = web.StreamResponse()
        await response.prepare(request)
        big = {"metadata": {"name": "b", "annotations": {"x": "y" * 300_000}}}
        lines = [
            {"type": "ADDED", "object": {"metadata": {"name": "a"}}},
            {"type": "ADDED", "object": big},
        ]
        data = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
        for start in range(0, len(data), 50_000):
            await response.write(data[start : start + 50_000])
        return response

    app = web.Application()
    app.router.add_get("/api/v1/pods", answer)
    async with _served(app) as url:
        yield url


async def test_a_watch_yields_each_event_whatever_its_length(watching: str) -> None:
    kube = Kube(_config(watching))
    try:
        events = [e async for e in kube.watch("/api/v1/pods", {"resourceVersion": "1"})]
        assert [e["object"]["metadata"]["name"] for e in events] == ["a", "b"]
        with pytest.raises(ApiError) as refused:
            async for _ in kube.watch("/api/v1/pods", {"resourceVersion": "old"}):
                pass
        assert refused.value.status == 410
    finally:
        await kube.close()
