"""The launch contract every framework fulfils (pure): which pods and roles a job has, what
each pod runs with which environment, the Services it needs, which pods decide success and
which roles are stopped once they have.

The builders (`manifests.job`) and the job's decisions (`controller.job.decisions`) ask the
job's `Contract` (`frameworks.contract_of`); no other module branches on the framework.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bigmodel.api.job import BigModelJob, BigModelJobSpec


@dataclass(frozen=True, order=True)
class Member:
    """One pod of a job: its role and its index within the role."""

    role: str
    index: int


class WhenDone(StrEnum):
    """What becomes of a role's pods once the deciding pods have succeeded."""

    WAIT = "Wait"
    """The job succeeds only once they have stopped (torchrun's non-zero nodes)."""
    STOP = "Stop"
    """They are stopped (parameter servers, an evaluator, a Dask scheduler)."""


class OnFailure(StrEnum):
    """What a failure of one of a role's pods leads to."""

    RESTART = "Restart"
    """A job failure: the gang restarts (elastic: the pod is replaced), per runPolicy."""
    IGNORE = "Ignore"
    """Nothing: the pod does not decide the job (a TensorFlow evaluator)."""


@dataclass(frozen=True)
class Role:
    """A kind of pod in a job: `indices` are its members' indices; pods are named
    `<job>-<stem>-<index>`, or `<job>-<stem>` when `indexed` is False (one pod)."""

    name: str
    """The value of the pods' `bigmodel.dev/role` label."""
    indices: range
    stem: str = ""
    """The pod name's part after the job's; default: the role's name."""
    indexed: bool = True
    decides: bool = False
    """Every pod of the role must succeed for the job to succeed."""
    when_done: WhenDone = WhenDone.WAIT
    on_failure: OnFailure = OnFailure.RESTART
    measured: bool = False
    """Its pods serve T_i on the metrics port: telemetry scrapes them, keyed by index."""

    @property
    def members(self) -> list[Member]:
        return [Member(self.name, i) for i in self.indices]

    def pod_name(self, job: str, index: int) -> str:
        stem = self.stem or self.name
        return f"{job}-{stem}-{index}" if self.indexed else f"{job}-{stem}"


WORKER = "worker"
"""The role of a task engine's workers (`engine_roles`)."""


class Measure(StrEnum):
    """What a measured pod's T_i is the time of (its `/metrics` page differs)."""

    STEPS = "Steps"
    """A training step (`bigmodel_node_step_seconds`, the step timer's gauge)."""
    TASKS = "Tasks"
    """A task of an engine (`bigmodel_worker_task_seconds`: mean since the last round)."""


@dataclass(frozen=True)
class RoleService:
    """A Service `<job>-<role>` in front of the pods of `role`, with these named ports."""

    role: str
    ports: Mapping[str, int]


@dataclass(frozen=True)
class Launch:
    """What the main container of one pod runs: command, args and the framework's env."""

    command: list[str]
    args: list[str]
    env: list[dict[str, Any]] = field(default_factory=list)


def engine_roles(coordinator: str, workers: int, decider: str) -> tuple[Role, ...]:
    """The roles of a task engine's cluster (Dask, Spark): one `coordinator` (scheduler,
    master) and `workers` measured workers, both stopped once the one `decider` pod (the
    client, the driver) is done; a lost worker is the engine's business (it reschedules)."""
    return (
        Role(coordinator, range(1), indexed=False, when_done=WhenDone.STOP),
        Role(
            WORKER,
            range(workers),
            stem="node",  # `<job>-worker-1023` would pass 63 characters
            when_done=WhenDone.STOP,
            on_failure=OnFailure.IGNORE,
            measured=True,
        ),
        Role(decider, range(1), indexed=False, decides=True),
    )


def once_answering(host: str, port: int, program: list[str]) -> list[str]:
    """`program` run once `host:port` accepts connections (`bigmodel.runtime.await_address`):
    for a client started beside the server it needs, which may take a minute to listen."""
    return ["python", "-m", "bigmodel.runtime.await_address", f"{host}:{port}", "--", *program]


class Contract(ABC):
    """How one framework launches a job and decides that it is done."""

    port_name: str = "rendezvous"
    """Name of `spec.masterPort` on the pods and the headless Service."""
    measure: Measure = Measure.STEPS
    """What the measured roles' T_i is the time of."""

    @abstractmethod
    def roles(self, spec: BigModelJobSpec) -> tuple[Role, ...]:
        """The job's roles, in creation order."""

    @abstractmethod
    def launch(self, job: BigModelJob, member: Member) -> Launch:
        """The program and environment of the pod of `member`."""

    @abstractmethod
    def owns_env(self, name: str) -> bool:
        """Whether the framework's contract sets the variable `name` (users may not)."""

    def services(self, job: BigModelJob) -> list[RoleService]:
        """Services the framework needs besides the job's headless Service."""
        return []

    def members(self, spec: BigModelJobSpec) -> list[Member]:
        """Every pod of the job, role by role."""
        return [m for role in self.roles(spec) for m in role.members]

    def role(self, spec: BigModelJobSpec, name: str) -> Role | None:
        """The role called `name`, None when the job has none."""
        return next((r for r in self.roles(spec) if r.name == name), None)

    def pod_name(self, job: BigModelJob, member: Member) -> str:
        role = self.role(job.spec, member.role)
        if role is None:
            raise ValueError(f"{job.spec.framework.value} jobs have no role {member.role}")
        return role.pod_name(job.metadata["name"], member.index)
