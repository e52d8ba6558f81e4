"""Dask's launch contract: a scheduler, `nodes` workers and the user's command as the client,
with dask-kubernetes' `DASK_SCHEDULER_ADDRESS`, so its programs run unchanged.

Pods are `<job>-scheduler`, `<job>-node-<i>` and `<job>-client`; the client starts once
the scheduler answers (`bigmodel.runtime.await_address`). The job succeeds when
the client exits 0; the scheduler and the workers are stopped then. The client's failure or
the scheduler's loss restarts the whole cluster (per runPolicy); a lost worker is Dask's
business: it reschedules that worker's tasks on the others. Each worker counts its tasks'
compute seconds (`bigmodel.runtime.dask_tasks`, a preload) for the operator's T_i.
"""

from __future__ import annotations

from bigmodel.api.job import BigModelJob, BigModelJobSpec
from bigmodel.manifests.frameworks.contract import (
    WORKER,
    Contract,
    Launch,
    Measure,
    Member,
    Role,
    RoleService,
    engine_roles,
    once_answering,
)
from bigmodel.manifests.names import service_name
from bigmodel.manifests.pods import env
from bigmodel.manifests.quantities import memory_bytes, whole_cpus

SCHEDULER, CLIENT = "scheduler", "client"
SCHEDULER_PORT = 8786
DASHBOARD_PORT = 8787
SCHEDULER_ADDRESS = "DASK_SCHEDULER_ADDRESS"
PRELOAD = "bigmodel.runtime.dask_tasks"


def scheduler_host(job: BigModelJob) -> str:
    """The scheduler pod's DNS name, through the job's headless Service."""
    name = job.metadata["name"]
    return f"{name}-{SCHEDULER}.{service_name(name)}"


def scheduler_address(job: BigModelJob) -> str:
    """`tcp://<scheduler>:8786`, as the workers and the client reach it."""
    return f"tcp://{scheduler_host(job)}:{SCHEDULER_PORT}"


def worker_args(job: BigModelJob, index: int) -> list[str]:
    """`dask worker` on the scheduler: threads from the CPUs, memory limit from the pod's
    memory (Dask's `auto` without one), the task-time preload when metrics are on."""
    spec = job.spec
    memory = memory_bytes(spec.resources)
    args = [
        "worker", scheduler_address(job),
        "--name", str(index),
        "--nthreads", str(whole_cpus(spec.resources)),
        "--memory-limit", str(memory) if memory is not None else "auto",
        "--no-nanny",
    ]  # fmt: skip
    return [*args, "--preload", PRELOAD] if spec.metrics.enabled else args


class Dask(Contract):
    """One scheduler, `nodes` workers, the client decides."""

    port_name = "dask-scheduler"
    measure = Measure.TASKS

    def roles(self, spec: BigModelJobSpec) -> tuple[Role, ...]:
        return engine_roles(SCHEDULER, spec.nodes, CLIENT)

    def launch(self, job: BigModelJob, member: Member) -> Launch:
        if member.role == SCHEDULER:
            args = ["scheduler", "--port", str(SCHEDULER_PORT)]
            return Launch(["dask"], [*args, "--dashboard-address", f":{DASHBOARD_PORT}"])
        if member.role == WORKER:
            return Launch(["dask"], worker_args(job, member.index))
        variables = [env(SCHEDULER_ADDRESS, scheduler_address(job))]
        client = once_answering(scheduler_host(job), SCHEDULER_PORT, list(job.spec.command))
        return Launch(client[:1], [*client[1:], *job.spec.args], variables)

    def owns_env(self, name: str) -> bool:
        return name == SCHEDULER_ADDRESS

    def services(self, job: BigModelJob) -> list[RoleService]:
        """`<job>-scheduler`: the scheduler's port and its dashboard, named."""
        return [
            RoleService(SCHEDULER, {"tcp-comm": SCHEDULER_PORT, "http-dashboard": DASHBOARD_PORT})
        ]
