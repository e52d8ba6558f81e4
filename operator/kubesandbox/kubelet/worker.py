"""One pod run as host processes, from its start until it finishes or is deleted.

Per pod: an address from the pod pool, volumes as directories, init containers in order,
then the containers, each supervised under the pod's restartPolicy with back-off, probed,
logged, and stopped (process group and marked children) on deletion or sandbox stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from kubesandbox.access import Rejected
from kubesandbox.kubelet import (
    disruption,
    hooks,
    launch,
    podenv,
    podstatus,
    probes,
    processes,
    termination,
    volumes,
)
from kubesandbox.kubelet.host import Host
from kubesandbox.kubelet.nodes import GPU
from kubesandbox.kubelet.podstatus import ContainerRun
from kubesandbox.kubelet.scheduler import container_requests, quantity
from kubesandbox.logs import container_log_path
from kubesandbox.network import addresses, dns
from kubesandbox.objects import Obj, now

_CONFIG_RETRY_SECONDS = 2.0
_HOOK_EXTENSION_SECONDS = 2.0
_USER_AGENT = "sandbox-kubelet"


def _gpu_count(container: Obj) -> int:
    return int(quantity(container_requests(container).get(GPU, 0)))


class PodWorker:
    """Runs one pod until it finishes or is deleted."""

    def __init__(self, host: Host, node: Obj, free_gpus: list[str], pod: Obj, ip: str) -> None:
        self.host, self.node, self.free_gpus, self.pod, self.ip = host, node, free_gpus, pod, ip
        spec = pod.get("spec", {})
        self.uid = pod["metadata"]["uid"]
        self.marker = f"{host.sandbox_id}/{self.uid}/"
        self.init = [
            ContainerRun(c["name"], c.get("image", "")) for c in spec.get("initContainers", ())
        ]
        self.main = [
            ContainerRun(c["name"], c.get("image", "")) for c in spec.get("containers", ())
        ]
        self.processes: dict[str, asyncio.subprocess.Process] = {}
        self.launches: dict[str, launch.Launch] = {}
        """How each container was last started (its hooks run in the same environment)."""
        self.gpus: dict[str, list[str]] = {}
        self.dirs: dict[str, Path] = {}
        self.started = now()
        self.terminating: asyncio.Task[None] | None = None
        self.deleting = False  # the pod object is being deleted
        self.evicted: str | None = None  # why the kubelet evicted the pod
        self.reaped = False  # every process of the pod is gone (after terminating)
        self._kills: set[asyncio.Task[None]] = set()  # liveness failures being acted on
        self.task = asyncio.create_task(self._run())

    def container_marker(self, name: str) -> str:
        """The process marker of one container (a prefix of no other container's)."""
        return launch.container_marker(self.host, self.pod, name)

    # -- status --------------------------------------------------------------------------

    @property
    def meta(self) -> Obj:
        """The pod's metadata."""
        meta: Obj = self.pod["metadata"]
        return meta

    def status(self) -> Obj:
        """The pod status from the containers' runs."""
        old = self.pod.get("status") or {}
        out = {
            **old,
            "phase": podstatus.phase(self.init, self.main),
            "conditions": podstatus.conditions(
                old.get("conditions", ()), self.init, self.main, now()
            ),
            "hostIP": addresses.HOST_IP,
            "hostIPs": [{"ip": addresses.HOST_IP}],
            "podIP": self.ip,
            "podIPs": [{"ip": self.ip}],
            "startTime": self.started,
            "containerStatuses": [r.status(self.uid) for r in self.main],
        }
        if self.init:
            out["initContainerStatuses"] = [r.status(self.uid) for r in self.init]
        return out if self.evicted is None else disruption.evicted(out, self.evicted, now())

    def publish(self) -> None:
        """Write the pod status when it changed (a deleted pod is left alone)."""
        status = self.status()
        if status == self.pod.get("status"):
            return
        ns, name = self.meta["namespace"], self.meta["name"]
        body = {"metadata": {"name": name}, "status": status}
        with contextlib.suppress(Rejected):
            self.pod = self.host.api.update("pods", ns, name, body, _USER_AGENT, status=True)
        self.host.hosts.set(self.uid, dns.pod_records(self.pod))

    # -- running -------------------------------------------------------------------------

    async def _run(self) -> None:
        self.publish()
        await self._prepare_volumes()
        spec = self.pod.get("spec", {})
        policy = spec.get("restartPolicy", "Always")
        for container, run in zip(spec.get("initContainers", ()), self.init, strict=True):
            await self._supervise(container, run, "Never" if policy == "Never" else "OnFailure")
            if run.exit_code != 0:
                self._finish()
                return
        await asyncio.gather(
            *(
                self._supervise(c, r, policy)
                for c, r in zip(spec["containers"], self.main, strict=True)
            )
        )
        self._finish()

    def _finish(self) -> None:
        """The pod is done: free its GPUs (its address stays until the pod is removed)."""
        for gpus in self.gpus.values():
            self.free_gpus.extend(gpus)
        self.gpus.clear()
        self.publish()

    async def _prepare_volumes(self) -> None:
        """Create the volumes, retrying while a referenced object is missing."""
        allocatable = self.node["status"]["allocatable"]
        while True:
            try:
                self.dirs = volumes.prepare(
                    self.host.state_dir, self.pod, allocatable, self._lookup
                )
                return
            except podenv.ConfigError as exc:
                for run in self.main:
                    run.state = {"waiting": {"reason": "ContainerCreating", "message": str(exc)}}
                self.publish()
                await asyncio.sleep(_CONFIG_RETRY_SECONDS)

    def _lookup(self, plural: str, name: str) -> Obj | None:
        return self.host.api.get(plural, self.meta["namespace"], name)

    async def _supervise(self, container: Obj, run: ContainerRun, policy: str) -> None:
        """Run a container until the restart policy lets it rest."""
        while True:
            code = await self._run_once(container, run)
            if not podstatus.should_restart(policy, code):
                run.done = True
                self.publish()
                return
            delay = podstatus.backoff(run.restarts, self.host.backoff_base)
            run.last_state, run.restarts = run.state, run.restarts + 1
            message = (
                f"back-off {delay:g}s restarting failed container={run.name} "
                f"pod={self.meta['name']}_{self.meta['namespace']}({self.uid})"
            )
            run.state = {"waiting": {"reason": "CrashLoopBackOff", "message": message}}
            self.publish()
            log_path = self.log_path(run.name)
            if log_path.exists():
                log_path.replace(self.log_path(run.name, previous=True))
            await asyncio.sleep(delay)

    def log_path(self, container: str, previous: bool = False) -> Path:
        return container_log_path(
            self.host.state_dir, self.meta["namespace"], self.meta["name"], container, previous
        )

    async def _run_once(self, container: Obj, run: ContainerRun) -> int:
        """Start the container's process, probe it, wait for it; its exit code."""
        try:
            how = await self._configured(container, run)
            started = now()
            message = termination.fresh(launch.message_file(self.host, self.pod, run.name))
            stdin = bool(container.get("stdin"))
            log = self.log_path(run.name)
            process = await processes.spawn(how.argv, how.env, how.cwd, log, stdin)
        except (podenv.ConfigError, OSError, ValueError) as exc:
            stamp = now()
            run.state = podstatus.terminated(128, stamp, stamp, "StartError", str(exc))
            self.publish()
            return 128
        self.processes[run.name], self.launches[run.name] = process, how
        run.state = {"running": {"startedAt": started}}
        run.started = run.ready = False
        self.publish()
        probing = asyncio.create_task(
            probes.watch_container(container, self._attempt(container, how), self._reports(run))
        )
        try:
            returncode = await process.wait()
        finally:
            probing.cancel()
        await processes.kill(None, self.container_marker(run.name))  # children outlive no container
        run.started = run.ready = False
        code = podstatus.exit_code(returncode)
        said = termination.message(container, message, self.log_path(run.name), code)
        run.state = podstatus.terminated(code, started, now(), message=said)
        self.publish()
        return code

    async def _configured(self, container: Obj, run: ContainerRun) -> launch.Launch:
        """The container's launch once the objects its env refers to exist (waiting with
        CreateContainerConfigError meanwhile, as the kubelet does); other configuration
        errors raise (the start fails)."""
        while True:
            try:
                return launch.launch(self.site(), self.pod, container, self.gpus_of(container))
            except podenv.MissingReference as exc:
                waiting = {"reason": "CreateContainerConfigError", "message": str(exc)}
                if run.state != {"waiting": waiting}:
                    run.state = {"waiting": waiting}
                    self.publish()
                await asyncio.sleep(_CONFIG_RETRY_SECONDS)

    def site(self) -> launch.PodSite:
        """Where this pod's processes run."""
        return launch.PodSite(self.host, self.node, self.ip, self.dirs)

    def gpus_of(self, container: Obj) -> list[str]:
        """The GPUs of a container, taken from its node's free ones at its first start."""
        name = container["name"]
        if name not in self.gpus:
            wanted = _gpu_count(container)
            self.gpus[name], self.free_gpus[:wanted] = self.free_gpus[:wanted], []
        return self.gpus[name]

    def _attempt(self, container: Obj, how: launch.Launch) -> Callable[[Obj], Awaitable[bool]]:
        """One try of a probe of this container run (exec probes run in its environment)."""
        return lambda probe: probes.probe_once(probe, container, self.ip, how.env, how.cwd)

    def _reports(self, run: ContainerRun) -> probes.ProbeReports:
        """What the probes of a container run change: started, ready, or a restart."""

        def started() -> None:
            run.started = True
            self.publish()

        def ready(ok: bool) -> None:
            run.ready = ok
            self.publish()

        def unhealthy(why: str) -> None:
            self._event("Warning", "Unhealthy", f"container {run.name}: {why}")
            process = self.processes[run.name]
            grace = float(self.pod["spec"].get("terminationGracePeriodSeconds", 30))
            kill = asyncio.create_task(
                processes.stop(process, self.container_marker(run.name), grace)
            )
            self._kills.add(kill)
            kill.add_done_callback(self._kills.discard)

        return probes.ProbeReports(started, ready, unhealthy)

    def _event(self, kind: str, reason: str, message: str) -> None:
        """Post a core/v1 event about the pod, as the kubelet does (`kubectl describe pod`)."""
        meta, stamp = self.meta, now()
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}."},
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "namespace": meta["namespace"],
                "name": meta["name"],
                "uid": self.uid,
            },
            "type": kind,
            "reason": reason,
            "message": message,
            "source": {"component": "kubelet", "host": self.pod["spec"].get("nodeName", "")},
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        with contextlib.suppress(Rejected):
            self.host.api.create("events", meta["namespace"], event, _USER_AGENT)

    # -- stopping ------------------------------------------------------------------------

    def kill(self, children_only: bool) -> int:
        """SIGKILL the pod's processes (with `children_only`, not the containers' own
        processes: e.g. torchrun's workers, not torchrun); how many there were."""
        spared = {p.pid for p in self.processes.values()} if children_only else set()
        pids = [pid for pid in processes.marked_pids(self.marker) if pid not in spared]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        return len(pids)

    async def evict(self, message: str) -> None:
        """Stop the pod at once and report it Failed, reason Evicted (node pressure)."""
        self.evicted = message
        await self.terminate(0)
        self.publish()

    def terminate(self, grace: float) -> asyncio.Task[None]:
        """Stop the pod's processes (SIGTERM, then SIGKILL after `grace`) once."""
        if self.terminating is None:
            self.terminating = asyncio.create_task(self._terminate(grace))
        return self.terminating

    async def _terminate(self, grace: float) -> None:
        """preStop hooks first (the containers still serve meanwhile), then SIGTERM with
        what is left of the grace period (at least `_HOOK_EXTENSION_SECONDS`, as the
        kubelet grants a hook that used it all)."""
        began = time.monotonic()
        await asyncio.gather(
            *(
                hooks.pre_stop(c, self._attempt(c, self.launches[c["name"]]), grace)
                for c in self.pod["spec"]["containers"]
                if c["name"] in self.launches and self.processes[c["name"]].returncode is None
            )
        )
        grace = max(grace - (time.monotonic() - began), min(grace, _HOOK_EXTENSION_SECONDS))
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        await asyncio.gather(
            *(processes.stop(p, self.container_marker(n), grace) for n, p in self.processes.items())
        )
        self.reaped = await processes.kill(None, self.marker)
        for gpus in self.gpus.values():
            self.free_gpus.extend(gpus)
        self.gpus.clear()
        self.host.hosts.set(self.uid, {})
