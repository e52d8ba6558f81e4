"""Pod addresses, cluster DNS names and the userspace service proxy.

Pods get addresses in 127.10.0.0/16 and services in 127.96.0.0/16 (both on the host's
loopback, so the host reaches them as a pod would). Cluster names live in one hosts file
that the kubelet keeps current and the network shim reads (see `netshim`).

The loopback is shared by every sandbox on the host (several test sessions, a benchmark and
a user's sandbox at once), so a pod address is leased host-wide (`AddressLeases`): an address
that another sandbox holds, or that a live socket is still bound to, is never handed out.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import itertools
import logging
import os
import re
import socket
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from kubesandbox.apiserver.store import Obj

CLUSTER_DOMAIN = "cluster.local"
POD_PREFIX = "127.10"
HOST_IP = "127.0.0.1"
_NAME = re.compile(
    r"(?<![\w.-])([a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)+)\.?(?![\w-])"
)
_PIPE_BYTES = 65536

log = logging.getLogger(__name__)


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


_TIME_WAIT = "06"  # /proc/net/tcp state: a closed connection (SO_REUSEADDR binds over it)
_SOCKET_TABLES = ("tcp", "tcp6", "udp", "udp6")


def _table_address(field: str) -> str | None:
    """The IPv4 address of a /proc/net socket table's `HEX:PORT` field (IPv4 or IPv4-mapped
    IPv6, both printed as 32-bit words in host byte order), else None."""
    hex_address = field.split(":", 1)[0]
    words = [bytes.fromhex(hex_address[i : i + 8]) for i in range(0, len(hex_address), 8)]
    if sys.byteorder == "little":
        words = [word[::-1] for word in words]
    if len(words) == 4 and words[:3] == [b"\0" * 4, b"\0" * 4, b"\0\0\xff\xff"]:
        words = words[3:]
    return socket.inet_ntoa(words[0]) if len(words) == 1 else None


def bound_addresses(proc_net: Path = Path("/proc/net")) -> set[str]:
    """IPv4 addresses that a live socket on this host is bound to (TIME_WAIT excluded)."""
    found: set[str] = set()
    for table in _SOCKET_TABLES:
        try:
            lines = (proc_net / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 3 and fields[3] != _TIME_WAIT:
                address = _table_address(fields[1])
                if address is not None:
                    found.add(address)
    return found


def _lease_directory() -> Path:
    """Where the host-wide address leases live: /tmp, the one directory every sandbox on a
    Linux host shares whatever its TMPDIR."""
    shared = Path("/tmp")
    base = shared if shared.is_dir() else Path(tempfile.gettempdir())
    return base / "bigmodel-sandbox-addresses"


class AddressLeases:
    """Host-wide leases on loopback addresses, so that two sandboxes never give one address
    to two pods (their pods would then share ports: a TCPStore bind fails, or a rendezvous
    joins the other sandbox's store).

    A lease is an exclusive `flock` on `<directory>/<address>`, held as long as the address
    is in use and dropped by the kernel when the sandbox process ends, even by SIGKILL. An
    address that any live socket is bound to (a process left from an earlier pod or from a
    sandbox killed with SIGKILL) is not leased either.
    """

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or _lease_directory()
        self._held: dict[str, int] = {}  # address -> locked file descriptor

    def claim(self, address: str, busy: set[str]) -> bool:
        """Lease `address` unless another sandbox holds it or it is in `busy`."""
        if address in self._held:
            return True
        if address in busy:
            return False
        try:
            self.directory.mkdir(mode=0o1777, parents=True, exist_ok=True)
            fd = os.open(self.directory / address, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._held[address] = fd
        return True

    def drop(self, address: str) -> None:
        """Give the lease on `address` back."""
        fd = self._held.pop(address, None)
        if fd is not None:
            os.close(fd)  # releases the lock

    def close(self) -> None:
        """Give every lease back."""
        for address in list(self._held):
            self.drop(address)


class AddressPool:
    """Pod addresses 127.10.x.y, lowest free first, reused after release; with `leases`,
    only addresses leased host-wide (see `AddressLeases`)."""

    def __init__(self, prefix: str = POD_PREFIX, leases: AddressLeases | None = None) -> None:
        self.prefix = prefix
        self.leases = leases
        self._used: dict[str, int] = {}  # owner -> index

    def _address(self, index: int) -> str:
        return f"{self.prefix}.{index // 254}.{index % 254 + 1}"

    def allocate(self, owner: str) -> str:
        """The address of `owner` (allocated on first call)."""
        if owner not in self._used:
            taken = set(self._used.values())
            busy = bound_addresses() if self.leases is not None else set()
            self._used[owner] = next(
                i
                for i in range(254 * 256)
                if i not in taken
                and (self.leases is None or self.leases.claim(self._address(i), busy))
            )
        return self._address(self._used[owner])

    def release(self, owner: str) -> None:
        """Free the address of `owner`."""
        index = self._used.pop(owner, None)
        if index is not None and self.leases is not None:
            self.leases.drop(self._address(index))


class HostsFile:
    """Cluster DNS records by source, written to one hosts file on every change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._by_source: dict[str, dict[str, str]] = {}
        self.records: dict[str, str] = {}
        self._write()

    def set(self, source: str, records: dict[str, str]) -> None:
        """Replace the records that one object (a pod or service uid) contributes."""
        if self._by_source.get(source, {}) == records:
            return
        if records:
            self._by_source[source] = records
        else:
            self._by_source.pop(source, None)
        self.records = {k: v for recs in self._by_source.values() for k, v in recs.items()}
        self._write()

    def _write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(hosts_text(self.records))
        temporary.replace(self.path)


Backend = tuple[str, int]


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(_PIPE_BYTES):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(ConnectionError, OSError, RuntimeError):
        writer.close()


class ServicePort:
    """One listening service port that forwards each connection to the next ready backend."""

    def __init__(self, server: asyncio.Server) -> None:
        self.server = server
        self.backends: list[Backend] = []
        self._turn = itertools.count()

    @classmethod
    async def listen(cls, address: str, port: int) -> ServicePort:
        """Listen on address:port."""
        holder: list[ServicePort] = []

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await holder[0].forward(reader, writer)

        server = await asyncio.start_server(handle, address, port, reuse_address=True)
        holder.append(cls(server))
        return holder[0]

    async def forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Connect to backends in round-robin order until one answers, then pipe both ways."""
        backends = list(self.backends)
        start = next(self._turn)
        for i in range(len(backends)):
            host, port = backends[(start + i) % len(backends)]
            try:
                up_reader, up_writer = await asyncio.open_connection(host, port)
            except OSError:
                continue
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
            return
        writer.close()

    def close(self) -> None:
        """Stop listening (open connections finish on their own)."""
        self.server.close()


class ServiceProxy:
    """The listening ports of all ClusterIP services."""

    def __init__(self) -> None:
        self._ports: dict[tuple[str, str, int], ServicePort] = {}  # (uid, ip, port)

    async def update(self, uid: str, address: str, backends: Mapping[int, list[Backend]]) -> None:
        """Listen on address:port for each service port and set its backends."""
        wanted = {(uid, address, port) for port in backends}
        for key in [k for k in self._ports if k[0] == uid and k not in wanted]:
            self._ports.pop(key).close()
        for key in sorted(wanted):
            if key not in self._ports:
                try:
                    self._ports[key] = await ServicePort.listen(address, key[2])
                except OSError as exc:
                    log.warning("service %s: cannot listen on %s:%s: %s", uid, *key[1:], exc)
                    continue
            self._ports[key].backends = backends[key[2]]

    def remove(self, uid: str) -> None:
        """Stop the ports of a deleted service."""
        for key in [k for k in self._ports if k[0] == uid]:
            self._ports.pop(key).close()

    def close(self) -> None:
        """Stop every port."""
        for port in self._ports.values():
            port.close()
        self._ports.clear()
