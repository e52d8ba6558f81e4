"""The LD_PRELOAD library that gives each pod process its own address and cluster DNS.

All pods share the host's network. Loaded into every pod process (and inherited by its
children), the library:
- rewrites `bind()` to the wildcard address (0.0.0.0, or `::` on a dual-stack socket) into a
  bind to the pod's own 127.x address, so two pods can listen on the same port (torch's
  TCPStore listens on all interfaces);
- answers `getaddrinfo()` for `localhost` and the pod's own hostname with the pod's address,
  and for cluster names from the hosts file the kubelet keeps current, with the pod's DNS
  search path (`<ns>.svc.cluster.local svc.cluster.local cluster.local`);
- makes `gethostname()` return the pod's hostname, and `gethostbyaddr_r()` of the pod's
  address return its FQDN (what the pod's /etc/hosts line does in Kubernetes; torchrun
  advertises `socket.getfqdn()` as the master address).
Its C source, `netshim.c` beside this module, is compiled with the host's C compiler on first
use; without one pods run without it.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
from importlib import resources
from pathlib import Path

from kubesandbox import legacy

POD_IP_ENV = legacy.ENV_PREFIX + "POD_IP"
HOSTNAME_ENV = legacy.ENV_PREFIX + "HOSTNAME"
FQDN_ENV = legacy.ENV_PREFIX + "FQDN"
HOSTS_ENV = legacy.ENV_PREFIX + "HOSTS"
SEARCH_ENV = legacy.ENV_PREFIX + "SEARCH"

log = logging.getLogger(__name__)


def build_shim(directory: Path) -> Path | None:
    """Compile the library into `directory` once; None (and a warning) without a compiler."""
    text = (resources.files(__package__) / "netshim.c").read_text()
    target = directory / f"libkubesandbox-net-{hashlib.sha256(text.encode()).hexdigest()[:8]}.so"
    if target.exists():
        return target
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        log.warning("no C compiler: pods share wildcard ports and resolve names by rewriting")
        return None
    directory.mkdir(parents=True, exist_ok=True)
    source = directory / "netshim.c"
    source.write_text(text)
    command = [compiler, "-shared", "-fPIC", "-O2", "-o", str(target), str(source), "-ldl"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        log.warning("cannot compile the network shim: %s", result.stderr.strip())
        return None
    return target
