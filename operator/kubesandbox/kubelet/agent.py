"""The process kubelet: nodes `sandbox-node-<i>` whose pods run as host processes, one
`PodWorker` per pod, with addresses leased host-wide and GPUs dealt over the nodes."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import shutil
import uuid
from pathlib import Path

from kubesandbox import legacy
from kubesandbox.access import KubeletAccess, Rejected
from kubesandbox.auth import Tokens
from kubesandbox.kubelet import credentials, processes, volumes
from kubesandbox.kubelet.host import Host, gpu_indices, host_gpus, memory_ki
from kubesandbox.kubelet.nodes import Capacity, NodeAgent, node_object
from kubesandbox.kubelet.reach import Reach
from kubesandbox.kubelet.worker import PodWorker
from kubesandbox.logs import container_log_path
from kubesandbox.network import addresses, netshim
from kubesandbox.network.dns import HostsFile
from kubesandbox.objects import Obj

PROCESS_LABEL = legacy.DOMAIN + "node-type"
_STOP_GRACE_SECONDS = 3.0
_REAP_RETRY_SECONDS = 1.0

log = logging.getLogger(__name__)


class ProcessAgent(NodeAgent):
    """Nodes `sandbox-node-<i>` whose pods run as host processes."""

    def __init__(
        self,
        api: KubeletAccess,
        state_dir: Path,
        hosts: HostsFile,
        tokens: Tokens,
        count: int,
        gpus_per_node: int,
        cpus: str,
        backoff_base: float = 10.0,
    ) -> None:
        self.host = Host(api, state_dir, hosts, uuid.uuid4().hex[:12], backoff_base, tokens)
        # leased host-wide: another sandbox on this host never gets the same pod address
        self.pool = addresses.AddressPool(leases=addresses.AddressLeases())
        self._reaping: set[asyncio.Task[None]] = set()  # addresses held for leftover processes
        # the free GPU indices of each node, taken by containers and given back
        self.node_gpus = gpu_indices(count, host_gpus(), gpus_per_node) if count else []
        self.workers: dict[str, PodWorker] = {}
        self._tokens: dict[str, str] = {}  # pod uid -> its token (revoked with the pod)
        self._nodes = [
            node_object(
                f"sandbox-node-{i}",
                len(gpus),
                legacy.with_old_names({PROCESS_LABEL: "process"}),
                [],
                Capacity(cpus, memory_ki()),
            )
            for i, gpus in enumerate(self.node_gpus)
        ]

    def nodes(self) -> list[Obj]:
        """The process nodes, with their CPUs, the host's memory and their GPUs."""
        return self._nodes

    def start(self, api_port: int, ca_pem: bytes) -> None:
        """Build the network shim and learn the API server's port and CA."""
        self.host.api_port, self.host.ca_pem = api_port, ca_pem
        self.host.shim = netshim.build_shim(self.host.state_dir / "network")

    def terminates_gracefully(self) -> bool:
        """Deleting a pod waits for its processes to stop."""
        return True

    def running(self, pod: Obj) -> Reach | None:
        """The way into the pod's processes, if it has any."""
        worker = self.workers.get(pod["metadata"]["uid"])
        return None if worker is None else Reach(worker)

    async def sync_pod(self, api: KubeletAccess, pod: Obj) -> None:
        """Start a new pod; begin stopping a deleted one."""
        meta = pod["metadata"]
        worker = self.workers.get(meta["uid"])
        if worker is None:
            if meta.get("deletionTimestamp"):  # deleted before it started: nothing to stop
                self._delete(pod)
                return
            index = int(pod["spec"]["nodeName"].rsplit("-", 1)[1])
            node = self._nodes[index]
            ip = self.pool.allocate(meta["uid"])
            host = self.host
            self._tokens[meta["uid"]] = credentials.issue(
                host.tokens, host.state_dir, host.api_port, host.ca_pem, pod
            )
            worker = PodWorker(self.host, node, self.node_gpus[index], pod, ip)
            self.workers[meta["uid"]] = worker
            return
        worker.pod = {**pod, "status": worker.pod.get("status")}
        if meta.get("deletionTimestamp") and not worker.deleting:
            worker.deleting = True  # its processes may be stopped already (an eviction)
            grace = float(meta.get("deletionGracePeriodSeconds") or 0)
            task = worker.terminate(grace)
            task.add_done_callback(lambda _: self._delete(pod))

    async def kill(self, api: KubeletAccess, pod: Obj, children_only: bool) -> int:
        """SIGKILL the pod's processes: its containers exit 137 (unless `children_only`,
        where the container decides what its children's death means)."""
        worker = self.workers.get(pod["metadata"]["uid"])
        return 0 if worker is None else worker.kill(children_only)

    async def evict(self, api: KubeletAccess, pod: Obj, message: str) -> None:
        """Stop the pod's processes at once and report it Evicted."""
        worker = self.workers.get(pod["metadata"]["uid"])
        if worker is not None:
            await worker.evict(message)

    def _delete(self, pod: Obj) -> None:
        """Remove the pod object (its processes are gone)."""
        meta = pod["metadata"]
        api, ns, name = self.host.api, meta["namespace"], meta["name"]
        live = api.get("pods", ns, name)
        if live is not None and live["metadata"]["uid"] == meta["uid"]:
            with contextlib.suppress(Rejected):
                api.delete("pods", ns, name, grace_seconds=0)

    async def remove_pod(self, api: KubeletAccess, pod: Obj) -> None:
        """Stop whatever still runs and remove the pod's directories and logs."""
        uid = pod["metadata"]["uid"]
        worker = self.workers.pop(uid, None)
        token = self._tokens.pop(uid, None)
        if token is not None:
            self.host.tokens.revoke(token)
        if worker is not None:
            await worker.terminate(0)
        if worker is None or worker.reaped:
            self.pool.release(uid)
        else:  # a process outlived SIGKILL: its sockets may still be bound to the address
            reaping = asyncio.create_task(self._release_when_reaped(uid, worker.marker))
            self._reaping.add(reaping)
            reaping.add_done_callback(self._reaping.discard)
        volumes.cleanup(self.host.state_dir, pod)
        meta = pod["metadata"]
        if not any(
            w.meta["name"] == meta["name"] and w.meta["namespace"] == meta["namespace"]
            for w in self.workers.values()
        ):
            logs = container_log_path(
                self.host.state_dir, meta["namespace"], meta["name"], "x"
            ).parent
            shutil.rmtree(logs, ignore_errors=True)

    async def _release_when_reaped(self, uid: str, marker: str) -> None:
        """Give the pod's address back only once none of its processes is left."""
        for attempt in itertools.count():
            if await processes.kill(None, marker):
                break
            if attempt % 60 == 0:
                log.warning("pod %s: processes outlive SIGKILL; its address waits for them", uid)
            await asyncio.sleep(_REAP_RETRY_SECONDS)
        self.pool.release(uid)

    async def close(self) -> None:
        """Stop every pod's processes and remove their directories."""
        workers = list(self.workers.values())
        await asyncio.gather(*(w.terminate(_STOP_GRACE_SECONDS) for w in workers))
        await processes.kill(None, self.host.sandbox_id + "/")
        for task in list(self._reaping):
            task.cancel()
        for worker in workers:
            volumes.cleanup(self.host.state_dir, worker.pod)
        self.workers.clear()
        if self.pool.leases is not None:
            self.pool.leases.close()
