"""What a process of a container starts with: argv, environment and working directory.

The same for the container's own command and for a command run in it (`kubectl exec`): the
declared env (`podenv`), volume mountPaths and the termination message path rewritten to
the host paths that stand in for them, dotted cluster names to addresses, and what the
kubelet adds (GPUs, hostname, API address, process marker, network shim).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from kubesandbox import legacy
from kubesandbox.kubelet import credentials, podenv, processes, termination, volumes
from kubesandbox.kubelet.host import Host
from kubesandbox.network import addresses, dns, netshim
from kubesandbox.objects import Obj


def mount_env_name(volume: str) -> str:
    """`KUBESANDBOX_MOUNT_<VOLUME>`: the variable holding a volume's host directory."""
    return legacy.ENV_PREFIX + "MOUNT_" + re.sub(r"[^A-Z0-9]", "_", volume.upper())


def container_marker(host: Host, pod: Obj, container: str) -> str:
    """The process marker of one container (a prefix of no other container's)."""
    return f"{host.sandbox_id}/{pod['metadata']['uid']}/{container}/"


def message_file(host: Host, pod: Obj, container: str) -> Path:
    """The host file standing in for a container's terminationMessagePath."""
    return termination.message_file(volumes.pod_dir(host.state_dir, pod), container)


@dataclass(frozen=True)
class PodSite:
    """Where a pod's processes run: the host, its node, its address and its volumes."""

    host: Host
    node: Obj
    ip: str
    dirs: Mapping[str, Path]


@dataclass(frozen=True)
class Launch:
    """argv, environment and working directory of one process."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path


def launch(
    site: PodSite,
    pod: Obj,
    container: Obj,
    gpus: Sequence[str],
    command: Sequence[str] | None = None,
) -> Launch:
    """How to start `command` (the container's own when None) in the container; raises
    `podenv.ConfigError` when the container cannot be configured."""
    namespace = pod["metadata"]["namespace"]
    allocatable = site.node["status"]["allocatable"]

    def lookup(plural: str, name: str) -> Obj | None:
        return site.host.api.get(plural, namespace, name)

    declared = podenv.container_env(pod, container, allocatable, lookup)
    argv = podenv.command_line(container, declared) if command is None else list(command)
    mounts = volumes.mount_map(container, site.dirs)
    message = str(message_file(site.host, pod, container["name"]))
    mounts = podenv.MountMap({**mounts.paths, termination.container_path(container): message})
    argv, declared = podenv.rewritten(
        argv, declared, mounts,
        lambda text: dns.rewrite_names(text, namespace, site.host.hosts.records),
    )  # fmt: skip
    env = {**os.environ, **declared, **_kubelet_env(site, pod, container, gpus)}
    env["PATH"] = os.pathsep.join(filter(None, [str(Path(sys.executable).parent), env.get("PATH")]))
    working_dir = container.get("workingDir")
    if not working_dir:
        return Launch(argv, env, Path.cwd())
    cwd = Path(mounts.rewrite(working_dir))
    if not cwd.is_dir():  # the image's directory: a private stand-in
        cwd = volumes.pod_dir(site.host.state_dir, pod) / "rootfs" / working_dir.lstrip("/")
        cwd.mkdir(parents=True, exist_ok=True)
    return Launch(argv, env, cwd)


def _kubelet_env(site: PodSite, pod: Obj, container: Obj, gpus: Sequence[str]) -> dict[str, str]:
    """What the kubelet adds: GPUs, hostname, API address, mounts, marker, network shim."""
    host, meta = site.host, pod["metadata"]
    hostname = pod.get("spec", {}).get("hostname") or meta["name"]
    env = {
        "CUDA_VISIBLE_DEVICES": ",".join(gpus),
        "HOSTNAME": hostname,
        "KUBERNETES_SERVICE_HOST": addresses.HOST_IP,
        "KUBERNETES_SERVICE_PORT": str(host.api_port),
        "KUBECONFIG": str(credentials.kubeconfig_path(host.state_dir, pod)),
        processes.MARKER_ENV: container_marker(host, pod, container["name"]),
        netshim.POD_IP_ENV: site.ip,
        netshim.HOSTNAME_ENV: hostname,
        netshim.FQDN_ENV: dns.pod_fqdn(pod) or hostname,
        netshim.HOSTS_ENV: str(host.hosts.path),
        netshim.SEARCH_ENV: " ".join(dns.search_domains(meta["namespace"])),
    }
    env.update(
        legacy.with_old_names(
            {mount_env_name(volume): str(path) for volume, path in site.dirs.items()}
        )
    )
    if host.shim is not None:
        preload = [str(host.shim), os.environ.get("LD_PRELOAD", "")]
        env["LD_PRELOAD"] = " ".join(filter(None, preload))
    return env
