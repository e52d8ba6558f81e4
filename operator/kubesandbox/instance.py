"""One running sandbox: cluster state, HTTP server, nodes, controllers and kubeconfig."""

from __future__ import annotations

from pathlib import Path

from kubesandbox.apiserver.cluster import Cluster
from kubesandbox.apiserver.http.server import ApiServer
from kubesandbox.apiserver.inprocess import InProcessClient
from kubesandbox.controllers.base import Controller
from kubesandbox.controllers.deployment import DeploymentController
from kubesandbox.controllers.endpoints import EndpointsController
from kubesandbox.controllers.replicaset import ReplicaSetController
from kubesandbox.kubeconfig import write_kubeconfig
from kubesandbox.kubelet.agent import ProcessAgent
from kubesandbox.kubelet.host import default_cpus
from kubesandbox.kubelet.nodehost import NodeHost
from kubesandbox.kubelet.nodes import NodeAgent
from kubesandbox.kubelet.simulated import SimulatedAgent
from kubesandbox.network.dns import HostsFile
from kubesandbox.network.proxy import ServiceProxy


class Sandbox:
    """Start and stop a sandbox on the running event loop."""

    def __init__(
        self,
        state_dir: Path,
        kubeconfig: Path,
        nodes: int = 0,
        gpus_per_node: int = 0,
        simulated_nodes: int = 0,
        port: int = 0,
        history: int = 20_000,
        restart_backoff: float = 10.0,
        cpus_per_node: str | None = None,
    ) -> None:
        self.state_dir = state_dir
        self.kubeconfig = kubeconfig
        self.port = port
        self.cluster = Cluster(history)
        api = InProcessClient(self.cluster)
        self.url = ""
        hosts = HostsFile(state_dir / "network" / "hosts")
        self.proxy = ServiceProxy()
        cpus = cpus_per_node or default_cpus()
        self.kubelet = ProcessAgent(
            api, state_dir, hosts, kubeconfig, nodes, gpus_per_node, cpus, restart_backoff
        )
        agents: list[NodeAgent] = [self.kubelet]
        if simulated_nodes:
            agents.append(SimulatedAgent(simulated_nodes, gpus_per_node, cpus))
        self.node_host = NodeHost(api, agents)
        self.server = ApiServer(self.cluster, state_dir, pods=self.node_host)
        self.controllers: list[Controller] = [
            EndpointsController(api, hosts, self.proxy),
            ReplicaSetController(api),
            DeploymentController(api),
        ]

    async def start(self) -> str:
        """Listen, write the kubeconfig, start controllers and nodes; returns the server URL."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.url = await self.server.start(port=self.port)
        write_kubeconfig(self.kubeconfig, self.url)
        self.kubelet.start(int(self.url.rsplit(":", 1)[1]))
        for controller in self.controllers:
            controller.start()
        self.node_host.start()
        return self.url

    async def stop(self) -> None:
        """Stop controllers, every pod process, the service proxy and the server."""
        for controller in self.controllers:
            await controller.stop()
        await self.node_host.stop()
        self.proxy.close()
        await self.server.stop()
