"""What the pods of this host share (`Host`), and what the host offers them: GPUs, memory."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from kubesandbox.access import KubeletAccess
from kubesandbox.auth import Tokens
from kubesandbox.network.dns import HostsFile


def host_gpus() -> int:
    """How many GPUs `nvidia-smi -L` lists (0 without nvidia-smi)."""
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))


def gpu_indices(nodes: int, real: int, fake_per_node: int) -> list[list[str]]:
    """Each node's GPU indices: real GPUs dealt round-robin over nodes, else fake 0..G-1."""
    if real:
        return [[str(g) for g in range(real) if g % nodes == i] for i in range(nodes)]
    return [[str(g) for g in range(fake_per_node)] for _ in range(nodes)]


MIN_NODE_CPUS = 4
"""The least CPU a node advertises: the CPU examples (2 node pods of 1 CPU), the chart's
operator (0.1) and a small CPU service fit on the default 2 nodes of any host."""


def default_cpus() -> str:
    """CPUs each node advertises by default: the host's count, at least MIN_NODE_CPUS."""
    return str(max(MIN_NODE_CPUS, os.cpu_count() or 1))


def memory_ki() -> int:
    """The host's MemTotal in KiB."""
    with Path("/proc/meminfo").open() as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                return int(line.split()[1])
    return 16 * 1024 * 1024


@dataclass
class Host:
    """What every pod on this host shares."""

    api: KubeletAccess
    state_dir: Path
    hosts: HostsFile
    sandbox_id: str
    backoff_base: float
    tokens: Tokens
    """Where each pod's own token is minted (`credentials`)."""
    shim: Path | None = None
    api_port: int = 0
    ca_pem: bytes = b""
    """The certificate of the CA that signed the API server's (for the pods' kubeconfigs)."""
