"""Endpoints and EndpointSlices of selector services, their DNS names and proxied ports.

A pod event syncs only the services that select the pod (found in a `SelectorIndex`), and a
sync reads only the pods that carry the service's selector (the store's label index): the
cost of an event does not grow with the number of services or pods.
"""

from __future__ import annotations

from collections.abc import Iterable

from kubesandbox.access import ControllerAccess
from kubesandbox.controllers.base import Controller, is_active, is_ready, owner_reference
from kubesandbox.controllers.selectorindex import Key, SelectorIndex
from kubesandbox.network.dns import HostsFile, service_records
from kubesandbox.network.proxy import ServiceProxy
from kubesandbox.objects import Obj, port_number

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
SLICES_KEY = "endpointslices.discovery.k8s.io"


def selected(service: Obj, pods: Iterable[Obj]) -> list[Obj]:
    """The pods with an address that a service's selector picks, by name."""
    selector = service.get("spec", {}).get("selector") or {}
    if not selector:
        return []
    return sorted(
        (
            p
            for p in pods
            if (p.get("status") or {}).get("podIP")
            and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
            and all((p["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())
        ),
        key=lambda p: p["metadata"]["name"],
    )


def target_port(service_port: Obj, pod: Obj) -> int | None:
    """The pod port a service port forwards to (a number, or a named container port)."""
    target: int | str = service_port.get("targetPort") or service_port["port"]
    for container in pod.get("spec", {}).get("containers", ()):
        try:
            return port_number(target, container)
        except ValueError:
            continue
    return None


def _address(pod: Obj) -> Obj:
    meta = pod["metadata"]
    return {
        "ip": pod["status"]["podIP"],
        "nodeName": pod["spec"].get("nodeName", ""),
        "targetRef": {
            "kind": "Pod",
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
        },
    }


def _ports(service: Obj, pod: Obj) -> tuple[tuple[str, int, str], ...]:
    """(name, pod port, protocol) of each service port that resolves for this pod."""
    out = []
    for port in service.get("spec", {}).get("ports") or ():
        number = target_port(port, pod)
        if number is not None:
            out.append((port.get("name", ""), number, port.get("protocol", "TCP")))
    return tuple(out)


def _port_objs(ports: tuple[tuple[str, int, str], ...]) -> list[Obj]:
    return [
        {**({"name": name} if name else {}), "port": number, "protocol": protocol}
        for name, number, protocol in ports
    ]


def subsets(service: Obj, pods: list[Obj]) -> list[Obj]:
    """Endpoints subsets: pods grouped by their resolved ports, ready or not; terminating
    pods are left out."""
    groups: dict[tuple[tuple[str, int, str], ...], Obj] = {}
    for pod in pods:
        if not is_active(pod):
            continue
        ports = _ports(service, pod)
        group = groups.setdefault(ports, {"ports": _port_objs(ports)})
        key = "addresses" if is_ready(pod) else "notReadyAddresses"
        group.setdefault(key, []).append(_address(pod))
    return [g for ports, g in groups.items() if ports]


def slice_endpoints(pods: list[Obj]) -> list[Obj]:
    """EndpointSlice endpoints: every selected pod with ready/serving/terminating."""
    out = []
    for pod in pods:
        address = _address(pod)
        terminating = bool(pod["metadata"].get("deletionTimestamp"))
        ready = is_ready(pod)
        out.append(
            {
                "addresses": [address["ip"]],
                "conditions": {
                    "ready": ready and not terminating,
                    "serving": ready,
                    "terminating": terminating,
                },
                "nodeName": address["nodeName"],
                "targetRef": address["targetRef"],
            }
        )
    return out


def backends(service: Obj, pods: list[Obj]) -> dict[int, list[tuple[str, int]]]:
    """Service port -> (pod IP, pod port) of its ready, active pods."""
    out: dict[int, list[tuple[str, int]]] = {}
    for port in service.get("spec", {}).get("ports") or ():
        if port.get("protocol", "TCP") != "TCP":
            continue
        out[port["port"]] = [
            (p["status"]["podIP"], number)
            for p in pods
            if is_active(p) and is_ready(p) and (number := target_port(port, p)) is not None
        ]
    return out


class EndpointsController(Controller):
    """Keeps Endpoints, EndpointSlices, service DNS names and service proxies current."""

    user_agent = "sandbox-endpoints-controller"

    def __init__(self, api: ControllerAccess, hosts: HostsFile, proxy: ServiceProxy) -> None:
        super().__init__(api, ["services", "pods"])
        self.hosts = hosts
        self.proxy = proxy
        self._selectors = SelectorIndex()
        self._selected_by: dict[str, set[Key]] = {}
        """Pod uid -> the services whose last sync saw its labels selected: a pod whose labels
        change, or that goes, must leave them."""

    async def handle(self, key: str, kind: str, obj: Obj) -> None:
        """A service changed: sync it; a pod changed: sync the services that select it now
        or did at their last sync."""
        meta = obj["metadata"]
        if key == "services":
            ref = (meta["namespace"], meta["name"])
            if kind == "DELETED":
                self._selectors.remove(ref)
                await self._forget(obj)
            else:
                self._selectors.put(ref, obj.get("spec", {}).get("selector") or {})
                await self.sync(obj)
            return
        now = self._selectors.matching(meta["namespace"], meta.get("labels") or {})
        services = now | self._selected_by.pop(meta["uid"], set())
        if kind != "DELETED" and now:
            self._selected_by[meta["uid"]] = now
        for ns, name in sorted(services):
            service = self.api.get("services", ns, name)
            if service is not None:
                await self.sync(service)

    async def _forget(self, service: Obj) -> None:
        meta = service["metadata"]
        self.proxy.remove(meta["uid"])
        self.hosts.set(meta["uid"], {})
        if self.api.get("endpoints", meta["namespace"], meta["name"]):
            self.api.delete("endpoints", meta["namespace"], meta["name"])

    async def sync(self, service: Obj) -> None:
        """Write a service's Endpoints and EndpointSlice, its DNS name and proxy backends."""
        meta, spec = service["metadata"], service.get("spec", {})
        ns, selector = meta["namespace"], spec.get("selector") or {}
        labelled = self.api.objects("pods", ns, selector) if selector else []
        for pod in labelled:
            self._selected_by.setdefault(pod["metadata"]["uid"], set()).add((ns, meta["name"]))
        pods = selected(service, labelled)
        ready_ips = [p["status"]["podIP"] for p in pods if is_active(p) and is_ready(p)]
        self.hosts.set(meta["uid"], service_records(service, ready_ips))
        cluster_ip = spec.get("clusterIP")
        if cluster_ip and cluster_ip != "None":
            await self.proxy.update(meta["uid"], cluster_ip, backends(service, pods))
        if not selector:
            return
        labels = {**(meta.get("labels") or {}), SERVICE_NAME_LABEL: meta["name"]}
        self.write(
            "endpoints",
            {
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": {"name": meta["name"], "namespace": ns, "labels": labels},
                "subsets": subsets(service, pods),
            },
        )
        resolved = next((_ports(service, p) for p in pods if _ports(service, p)), ())
        self.write(
            SLICES_KEY,
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": f"{meta['name']}-sandbox",
                    "namespace": ns,
                    "labels": {
                        SERVICE_NAME_LABEL: meta["name"],
                        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
                    },
                    "ownerReferences": [owner_reference(service)],
                },
                "addressType": "IPv4",
                "endpoints": slice_endpoints(pods),
                "ports": _port_objs(resolved),
            },
        )
