"""Pod and service addresses on the host loopback, leased host-wide.

Pods get addresses in 127.10.0.0/16 and services in 127.96.0.0/16 (both on the host's
loopback, so the host reaches them as a pod would). The loopback is shared by every sandbox
on the host (several test sessions, a benchmark and a user's sandbox at once), so an address
is leased host-wide (`AddressLeases`): an address that another sandbox holds, or that a live
socket is still bound to, is never handed out.
"""

from __future__ import annotations

import fcntl
import os
import socket
import sys
import tempfile
from pathlib import Path

POD_PREFIX = "127.10"
HOST_IP = "127.0.0.1"

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
    return base / "kubesandbox-addresses"


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
