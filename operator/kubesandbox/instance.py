"""One running sandbox: cluster state, HTTP server, nodes, controllers, kubeconfig, the
admin token and the fault plan."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from kubesandbox import pki
from kubesandbox.apiserver.cluster import Cluster
from kubesandbox.apiserver.http.server import ApiServer
from kubesandbox.apiserver.inprocess import InProcessClient
from kubesandbox.auth import Tokens
from kubesandbox.controllers.base import Controller
from kubesandbox.controllers.daemonset import DaemonSetController
from kubesandbox.controllers.deployment import DeploymentController
from kubesandbox.controllers.endpoints import EndpointsController
from kubesandbox.controllers.job import JobController
from kubesandbox.controllers.replicaset import ReplicaSetController
from kubesandbox.faults.admin import Admin
from kubesandbox.faults.plan import FaultPlan, Rule
from kubesandbox.kubeconfig import write_kubeconfig
from kubesandbox.kubelet.agent import ProcessAgent
from kubesandbox.kubelet.host import default_cpus
from kubesandbox.kubelet.nodehost import NodeHost
from kubesandbox.kubelet.nodes import NodeAgent
from kubesandbox.kubelet.simulated import SimulatedAgent
from kubesandbox.network.dns import HostsFile
from kubesandbox.network.proxy import ServiceProxy

PRIVATE_DIRS = ("pods", "volumes", "logs")
"""State dir folders created mode 0700: pods' kubeconfigs and secrets, claims, logs."""


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
        faults: Iterable[Rule] = (),
        fault_seed: int = 0,
    ) -> None:
        self.state_dir = state_dir
        self.kubeconfig = kubeconfig
        self.port = port
        self.tokens = Tokens()
        self.faults = FaultPlan(faults, fault_seed)
        self.cluster = Cluster(history)
        api = InProcessClient(self.cluster)
        self.url = ""
        hosts = HostsFile(state_dir / "network" / "hosts")
        self.proxy = ServiceProxy()
        cpus = cpus_per_node or default_cpus()
        self.kubelet = ProcessAgent(
            api, state_dir, hosts, self.tokens, nodes, gpus_per_node, cpus, restart_backoff
        )
        agents: list[NodeAgent] = [self.kubelet]
        if simulated_nodes:
            agents.append(SimulatedAgent(simulated_nodes, gpus_per_node, cpus))
        self.node_host = NodeHost(api, agents)
        self.admin = Admin(self.faults, self.node_host, api)
        self.server = ApiServer(
            self.cluster, state_dir, self.tokens, self.node_host, self.faults, self.admin
        )
        self.controllers: list[Controller] = [
            EndpointsController(api, hosts, self.proxy),
            ReplicaSetController(api),
            DeploymentController(api),
            JobController(api, restart_backoff),
            DaemonSetController(api),
        ]

    async def start(self) -> str:
        """Listen, write the kubeconfig, start controllers and nodes; returns the server URL."""
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        for private in PRIVATE_DIRS:  # secrets, tokens and logs of pods: the user's only
            (self.state_dir / private).mkdir(mode=0o700, exist_ok=True)
            (self.state_dir / private).chmod(0o700)
        self.pki = pki.create(self.state_dir / "pki")
        self.url = await self.server.start(port=self.port, tls=self.pki.server_context())
        write_kubeconfig(self.kubeconfig, self.url, self.pki.ca_pem, self.tokens.admin)
        self.kubelet.start(int(self.url.rsplit(":", 1)[1]), self.pki.ca_pem)
        for controller in self.controllers:
            controller.start()
        self.node_host.start()
        return self.url

    async def stop(self) -> None:
        """Stop controllers, every pod process, the service proxy and the server."""
        await self.admin.close()
        for controller in self.controllers:
            await controller.stop()
        await self.node_host.stop()
        self.proxy.close()
        await self.server.stop()
