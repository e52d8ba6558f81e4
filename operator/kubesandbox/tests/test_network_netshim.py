"""The network shim: pods bind the same wildcard port and resolve cluster names."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kubesandbox.network import netshim

pytestmark = pytest.mark.skipif(
    shutil.which("cc") is None and shutil.which("gcc") is None,
    reason="the shim is compiled with the host's C compiler and there is none",
)

PROGRAM = """
import socket, sys
server = socket.socket(socket.AF_INET6)
server.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
server.bind(("::", 0 if len(sys.argv) < 2 else int(sys.argv[1])))
print(server.getsockname()[0], server.getsockname()[1], socket.gethostname(),
      socket.gethostbyname("peer.sub"), socket.gethostbyname("localhost"), socket.getfqdn())
sys.stdout.flush()
sys.stdin.read()
"""


def _start(shim: Path, hosts: Path, ip: str, port: str = "") -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "LD_PRELOAD": str(shim),
        netshim.POD_IP_ENV: ip,
        netshim.HOSTNAME_ENV: "me",
        netshim.FQDN_ENV: "me.sub.ns.svc.cluster.local",
        netshim.HOSTS_ENV: str(hosts),
        netshim.SEARCH_ENV: "ns.svc.cluster.local svc.cluster.local cluster.local",
    }
    argv = [sys.executable, "-c", PROGRAM, *([port] if port else [])]
    return subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def test_two_pods_listen_on_the_same_wildcard_port_and_resolve_names(tmp_path: Path) -> None:
    shim = netshim.build_shim(tmp_path)
    assert shim is not None
    hosts = tmp_path / "hosts"
    hosts.write_text("127.10.9.9 peer.sub.ns.svc.cluster.local\n")
    first = _start(shim, hosts, "127.10.9.1")
    assert first.stdout is not None
    address, port, hostname, peer, localhost, fqdn = first.stdout.readline().split()
    second = _start(shim, hosts, "127.10.9.2", port)
    assert second.stdout is not None
    other = second.stdout.readline().split()
    for process in (first, second):
        process.communicate("")
    assert (address, other[0], other[1]) == ("::ffff:127.10.9.1", "::ffff:127.10.9.2", port)
    assert (hostname, peer, localhost, fqdn) == (
        "me",
        "127.10.9.9",
        "127.10.9.1",
        "me.sub.ns.svc.cluster.local",
    )
