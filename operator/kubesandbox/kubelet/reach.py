"""What the API server reaches in a pod the process kubelet runs (`nodes.RunningPod`):
commands exec'd in a container's environment, a container's output and stdin, the pod's
ports, as the kubelet's streaming server offers them."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Sequence

from kubesandbox import podstreams
from kubesandbox.kubelet import launch, podenv, sessions
from kubesandbox.kubelet.worker import PodWorker
from kubesandbox.objects import Obj
from kubesandbox.podstreams import Unavailable

_exec_ids = itertools.count(1)


class Reach:
    """exec, attach and port-forward into the pod of one worker."""

    def __init__(self, worker: PodWorker) -> None:
        self.worker = worker

    def _running(self, name: str) -> tuple[Obj, asyncio.subprocess.Process]:
        """A container of the pod and its process, which must be running."""
        worker = self.worker
        container = next((c for c in worker.pod["spec"]["containers"] if c["name"] == name), None)
        run = next((r for r in worker.main if r.name == name), None)
        process = worker.processes.get(name)
        if container is None or run is None or process is None or "running" not in run.state:
            raise Unavailable(f'container not found ("{name}")')
        return container, process

    async def exec(
        self, name: str, command: Sequence[str], stdin: bool, tty: podstreams.Terminal | None
    ) -> podstreams.Session:
        """Run `command` in a running container's environment, marked as part of it (so it
        stops with it) under a marker of its own (so it can stop alone)."""
        container, _ = self._running(name)
        worker = self.worker
        try:
            how = launch.launch(
                worker.site(), worker.pod, container, worker.gpus_of(container), command
            )
        except podenv.ConfigError as exc:
            raise Unavailable(str(exc)) from exc
        marker = f"{worker.container_marker(name)}exec-{next(_exec_ids)}/"
        try:
            if tty is not None:
                return await sessions.PtySession.start(how, marker, tty)
            return await sessions.PipeSession.start(how, marker, stdin)
        except FileNotFoundError as exc:
            raise Unavailable(f'exec: "{command[0]}": executable file not found in $PATH') from exc
        except OSError as exc:
            raise Unavailable(f'exec: "{command[0]}": {exc.strerror}') from exc

    def attach(self, name: str) -> podstreams.Session:
        """Follow a running container's output; its stdin when it has `stdin: true`."""
        container, process = self._running(name)
        log = self.worker.log_path(name)
        return sessions.AttachSession(process, log, bool(container.get("stdinOnce")))

    async def connect(self, port: int) -> podstreams.Connection:
        """A TCP connection to `port` on the pod's address."""
        ip = self.worker.ip
        try:
            return await asyncio.open_connection(ip, port)
        except OSError as exc:
            raise Unavailable(
                f"error forwarding port {port} to pod {self.worker.meta['name']}: "
                f"dial tcp {ip}:{port}: connect: {os.strerror(exc.errno or 0).lower()}"
            ) from exc
