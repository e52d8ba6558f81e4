"""PyTorch's launch contract: torchrun on every node, Kubeflow PyTorchJob's `PET_*` variables.

Node 0 (role `master`) hosts the rendezvous; the job succeeds when it has succeeded and every
other node (role `worker`) has stopped. Pods are `<job>-node-<rank>`: a member's index is its
node rank.
"""

from __future__ import annotations

from typing import Any

from bigmodel.api.job import RESERVED_ENV_PREFIX, BigModelJob, BigModelJobSpec
from bigmodel.manifests.frameworks.contract import Contract, Launch, Member, Role
from bigmodel.manifests.names import node_pod_name, service_name
from bigmodel.manifests.pods import env

MASTER, WORKER = "master", "worker"
_PYTHONS = ("python", "python3")


def node(rank: int) -> Member:
    """The member of node `rank`: `master` for node 0, `worker` for the others."""
    return Member(MASTER if rank == 0 else WORKER, rank)


def torchrun_args(command: list[str], args: list[str]) -> list[str]:
    """torchrun's arguments for the per-process program `command + args`: a bare `python`
    script or `-m` module becomes torchrun's own launch, anything else runs with
    `--no-python`. Every other setting comes from the `PET_*` environment."""
    program = [*command, *args]
    head, rest = program[0], program[1:]
    if head in _PYTHONS and rest and rest[0] == "-m" and len(rest) > 1:
        return rest
    if head in _PYTHONS and rest and not rest[0].startswith("-"):
        return rest
    return ["--no-python", *program]


def torchrun_env(job: BigModelJob, rank: int) -> list[dict[str, Any]]:
    """The torchrun contract of node `rank` (PyTorchJob-compatible `PET_*` variables)."""
    spec, name = job.spec, job.metadata["name"]
    master = f"{node_pod_name(name, 0)}.{service_name(name)}"
    nnodes: str | int = spec.nodes
    variables = [
        env("PET_NPROC_PER_NODE", spec.effective_procs_per_node),
        env("PET_NODE_RANK", rank),
        env("PET_MASTER_ADDR", master),
        env("PET_MASTER_PORT", spec.master_port),
    ]
    if spec.elastic:
        nnodes = f"{spec.elastic.min_nodes}:{spec.elastic.max_nodes}"
        variables += [
            env("PET_RDZV_BACKEND", "c10d"),
            env("PET_RDZV_ENDPOINT", f"{master}:{spec.master_port}"),
            env("PET_RDZV_ID", job.metadata["uid"]),
            env("PET_MAX_RESTARTS", spec.elastic.max_restarts),
        ]
    return [env("PET_NNODES", nnodes), *variables]


class PyTorch(Contract):
    """torchrun agents on `nodes` pods; node 0 decides."""

    def roles(self, spec: BigModelJobSpec) -> tuple[Role, ...]:
        return (
            Role(MASTER, range(1), stem="node", decides=True, measured=True),
            Role(WORKER, range(1, spec.nodes), stem="node", measured=True),
        )

    def launch(self, job: BigModelJob, member: Member) -> Launch:
        spec = job.spec
        args = torchrun_args(spec.command, spec.args)
        return Launch(["torchrun"], args, torchrun_env(job, member.index))

    def owns_env(self, name: str) -> bool:
        return name.startswith(RESERVED_ENV_PREFIX)
