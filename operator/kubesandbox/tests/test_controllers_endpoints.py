"""The Endpoints controller's event handling: a pod event syncs exactly the services that
select the pod, now or at their last sync (on a real in-process cluster)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubesandbox.apiserver.cluster import Cluster
from kubesandbox.apiserver.inprocess import InProcessClient
from kubesandbox.controllers.endpoints import EndpointsController
from kubesandbox.network.dns import HostsFile
from kubesandbox.network.proxy import ServiceProxy

NS = "default"


def _controller(tmp_path: Path) -> tuple[InProcessClient, EndpointsController]:
    api = InProcessClient(Cluster())
    return api, EndpointsController(api, HostsFile(tmp_path / "hosts"), ServiceProxy())


async def _service(api: InProcessClient, ctl: EndpointsController, name: str) -> None:
    spec = {"clusterIP": "None", "selector": {"app": name}, "ports": [{"port": 80}]}
    svc = api.create("services", NS, {"metadata": {"name": name}, "spec": spec})
    await ctl.handle("services", "ADDED", svc)


async def _pod(api: InProcessClient, ctl: EndpointsController, name: str, app: str) -> Any:
    meta = {"name": name, "labels": {"app": app}}
    pod = api.create("pods", NS, {"metadata": meta, "spec": {"containers": [{"name": "c"}]}})
    status = {"phase": "Running", "podIP": f"10.0.0.{len(name)}", "conditions": []}
    pod = api.update("pods", NS, name, {"metadata": {"name": name}, "status": status}, status=True)
    await ctl.handle("pods", "MODIFIED", pod)
    return pod


def _addresses(api: InProcessClient, service: str) -> list[str]:
    endpoints = api.get("endpoints", NS, service) or {}
    return [
        a["targetRef"]["name"]
        for subset in endpoints.get("subsets", ())
        for a in subset.get("notReadyAddresses", ()) + subset.get("addresses", [])
    ]


async def test_a_pod_event_syncs_only_the_services_that_select_it(tmp_path: Path) -> None:
    api, ctl = _controller(tmp_path)
    await _service(api, ctl, "web")
    await _service(api, ctl, "db")
    untouched = api.get("endpoints", NS, "db")
    await _pod(api, ctl, "web-1", "web")
    assert _addresses(api, "web") == ["web-1"]
    assert api.get("endpoints", NS, "db") == untouched


async def test_a_relabelled_pod_leaves_a_service_that_selected_it_first(tmp_path: Path) -> None:
    api, ctl = _controller(tmp_path)
    pod = await _pod(api, ctl, "web-1", "web")
    await _service(api, ctl, "web")  # the service's own sync finds the pod
    assert _addresses(api, "web") == ["web-1"]
    relabelled = {**pod, "metadata": {**pod["metadata"], "labels": {"app": "other"}}}
    pod = api.update("pods", NS, "web-1", relabelled)
    await ctl.handle("pods", "MODIFIED", pod)
    assert _addresses(api, "web") == []


async def test_a_deleted_pod_leaves_its_service(tmp_path: Path) -> None:
    api, ctl = _controller(tmp_path)
    await _service(api, ctl, "web")
    pod = await _pod(api, ctl, "web-1", "web")
    api.delete("pods", NS, "web-1", grace_seconds=0)
    await ctl.handle("pods", "DELETED", pod)
    assert _addresses(api, "web") == []
