"""Cluster DNS: the names of pods and services, their rewriting, and the hosts file.

Cluster names live in one hosts file that the kubelet and the Endpoints controller keep
current and the network shim reads (see `netshim`).
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Mapping
from pathlib import Path

from kubesandbox.objects import Obj

CLUSTER_DOMAIN = "cluster.local"
WRITE_INTERVAL = 0.05
"""Shortest pause between two writes of the hosts file, in seconds."""
_NAME = re.compile(
    r"(?<![\w.-])([a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)+)\.?(?![\w-])"
)


def search_domains(namespace: str) -> list[str]:
    """The DNS search path of a pod in `namespace` (as in its resolv.conf)."""
    return [f"{namespace}.svc.{CLUSTER_DOMAIN}", f"svc.{CLUSTER_DOMAIN}", CLUSTER_DOMAIN]


def resolve(name: str, namespace: str, records: Mapping[str, str]) -> str | None:
    """The address of a cluster name as seen from `namespace`, or None."""
    name = name.rstrip(".").lower()
    for candidate in (name, *(f"{name}.{d}" for d in search_domains(namespace))):
        if candidate in records:
            return records[candidate]
    return None


def rewrite_names(text: str, namespace: str, records: Mapping[str, str]) -> str:
    """`text` with every dotted cluster name (`pod.subdomain`, `svc.ns.svc`...) replaced by
    its address; single labels are left to run-time resolution."""

    def replace(match: re.Match[str]) -> str:
        return resolve(match.group(1), namespace, records) or match.group(0)

    return _NAME.sub(replace, text)


def pod_fqdn(pod: Obj) -> str:
    """`<hostname>.<subdomain>.<ns>.svc.<domain>` of a pod with a subdomain, else ""."""
    spec, meta = pod.get("spec", {}), pod["metadata"]
    if not spec.get("subdomain"):
        return ""
    hostname = spec.get("hostname") or meta["name"]
    return f"{hostname}.{spec['subdomain']}.{meta['namespace']}.svc.{CLUSTER_DOMAIN}"


def pod_records(pod: Obj) -> dict[str, str]:
    """The DNS name of a running pod with a subdomain -> its address."""
    ip = (pod.get("status") or {}).get("podIP")
    name = pod_fqdn(pod)
    if not (ip and name) or pod["metadata"].get("deletionTimestamp"):
        return {}
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return {}
    return {name: ip}


def service_records(service: Obj, ready_ips: list[str]) -> dict[str, str]:
    """A service's name -> its clusterIP, or its first ready pod when headless."""
    meta = service["metadata"]
    cluster_ip = service.get("spec", {}).get("clusterIP")
    address = cluster_ip if cluster_ip and cluster_ip != "None" else min(ready_ips, default="")
    if not address:
        return {}
    return {f"{meta['name']}.{meta['namespace']}.svc.{CLUSTER_DOMAIN}": address}


def hosts_text(records: Mapping[str, str]) -> str:
    """Hosts-file lines `address name`, sorted by name."""
    return "".join(f"{ip} {name}\n" for name, ip in sorted(records.items()))


class HostsFile:
    """Cluster DNS records by source, in one hosts file. A change is written at once, but
    under a stream of changes at most once per `interval` seconds (each write costs the whole
    file, so writing on every change would make a change cost as much as the cluster is big).
    A name belongs to one source (a pod's FQDN has a subdomain, a service's has none)."""

    def __init__(self, path: Path, interval: float = WRITE_INTERVAL) -> None:
        self.path = path
        self.interval = interval
        self._by_source: dict[str, dict[str, str]] = {}
        self.records: dict[str, str] = {}
        self._written = -math.inf  # monotonic time of the last write
        self._pending: asyncio.TimerHandle | None = None
        self._write()

    def set(self, source: str, records: dict[str, str]) -> None:
        """Replace the records that one object (a pod or service uid) contributes."""
        old = self._by_source.get(source, {})
        if old == records:
            return
        for name in old:
            self.records.pop(name, None)
        if records:
            self._by_source[source] = dict(records)
            self.records.update(records)
        else:
            self._by_source.pop(source, None)
        self._changed()

    def _changed(self) -> None:
        if self._pending is not None:
            return
        wait = self._written + self.interval - time.monotonic()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop to defer on: write now
            wait = 0
        if wait <= 0:
            self._write()
        else:
            self._pending = loop.call_later(wait, self._write)

    def _write(self) -> None:
        self._pending = None
        self._written = time.monotonic()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(hosts_text(self.records))
        temporary.replace(self.path)
