"""BigModelJob: distributed work across N nodes, launched by its framework (torchrun for
PyTorch, TFJob's TF_CONFIG for TensorFlow)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field

from bigmodel.api.common import (
    LIST_SET,
    ApiModel,
    defaulted,
    immutable,
    rule,
    validations,
)
from bigmodel.api.core import LongString, PodOptions
from bigmodel.api.status import ResourceStatus
from bigmodel.api.telemetry import TelemetrySpec

RESERVED_ENV_PREFIX = "PET_"
"""The torchrun contract's variables, set by the operator; user env may not use the prefix."""

MAX_NODES = 1024

MAX_NAME_LENGTH = 53
"""Longest job name: its pods are `<job>-node-<rank>` (or `<job>-ps-<i>`, `<job>-evaluator`),
and 53 + len("-node-1023") = 63, the limit of a pod hostname (an RFC 1035 label)."""

IMMUTABLE_FIELDS = (
    "framework",
    "image",
    "command",
    "args",
    "procsPerNode",
    "gpusPerNode",
    "masterPort",
    "tensorflow",
)
"""What a running gang cannot change: its framework, its program and its topology."""

MAX_PARAMETER_SERVERS = 64


class Framework(StrEnum):
    """How the job's pods are launched and when the job is done; each value has its launch
    contract in `bigmodel.manifests.frameworks`."""

    PYTORCH = "pytorch"
    TENSORFLOW = "tensorflow"
    DASK = "dask"
    SPARK = "spark"


class RestartPolicy(StrEnum):
    """What a failed node leads to."""

    ON_FAILURE = "OnFailure"
    EXIT_CODE = "ExitCode"
    NEVER = "Never"


class CleanPodPolicy(StrEnum):
    """Which pods are deleted when the job finishes."""

    NONE = "None"
    RUNNING = "Running"
    ALL = "All"


class GangScheduler(StrEnum):
    """Scheduler that places all node pods at once."""

    VOLCANO = "volcano"
    SCHEDULER_PLUGINS = "scheduler-plugins"


class JobPhase(StrEnum):
    """Lifecycle phase of a BigModelJob."""

    PENDING = "Pending"
    RUNNING = "Running"
    RESTARTING = "Restarting"
    SUSPENDED = "Suspended"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class ElasticPolicy(ApiModel):
    """Elastic training: torchrun rendezvous (c10d) lets the node count vary."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            rule(
                "self.minNodes <= self.maxNodes",
                "minNodes must be less than or equal to maxNodes",
                field_path=".minNodes",
            )
        )
    )

    min_nodes: int = Field(ge=1, le=MAX_NODES)
    """Fewest nodes the job keeps running with; below it the job restarts or fails."""
    max_nodes: int = Field(ge=1, le=MAX_NODES)
    """Most nodes the job may run."""
    max_restarts: int = Field(3, ge=0, le=1000)
    """torchrun --max-restarts: membership changes the workers survive in place."""


class RunPolicy(ApiModel):
    """Restarts, deadlines, cleanup and suspension of the job."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            rule(
                "!has(self.retryableExitCodes) || size(self.retryableExitCodes) == 0"
                " || self.restartPolicy == 'ExitCode'",
                "retryableExitCodes applies only when restartPolicy is ExitCode",
                field_path=".retryableExitCodes",
            )
        )
    )

    backoff_limit: int = Field(3, ge=0, le=1000)
    """Restarts of the job (whole gang, or elastic replacements) before it fails."""
    restart_policy: RestartPolicy = RestartPolicy.ON_FAILURE
    """OnFailure: restart on any failure; ExitCode: restart only on retryable exit codes;
    Never: fail at the first failure. Every restart counts against backoffLimit; a pod that
    was deleted or evicted is always retryable."""
    retryable_exit_codes: list[Annotated[int, Field(ge=1, le=255)]] = Field(
        default_factory=list, max_length=64, json_schema_extra=LIST_SET
    )
    """With ExitCode: exit codes that restart the job; when empty, 128-255 (killed by a
    signal) are retryable and 1-127 are permanent."""
    active_deadline_seconds: int | None = Field(None, ge=1)
    """Seconds after start at which a running job is stopped and marked Failed."""
    ttl_seconds_after_finished: int | None = Field(None, ge=0)
    """Seconds after finishing at which the job (and its pods) is deleted."""
    clean_pod_policy: CleanPodPolicy = CleanPodPolicy.RUNNING
    """Pods deleted when the job finishes: None, Running (still running ones), All."""
    suspend: bool = False
    """True deletes the pods and keeps the job; false resumes it from the start."""


class GangScheduling(ApiModel):
    """Schedule all node pods together or none (a PodGroup); absent: pods schedule one by one."""

    scheduler: GangScheduler = GangScheduler.VOLCANO
    """volcano or scheduler-plugins (coscheduling); it must be installed in the cluster."""
    min_available: int | None = Field(None, ge=1, le=MAX_NODES)
    """Pods that must be placed together; default: all nodes (minNodes when elastic)."""
    schedule_timeout_seconds: int | None = Field(None, ge=1)
    """Seconds the scheduler waits to place the whole gang before retrying."""


class MetricsSpec(ApiModel):
    """The Prometheus endpoint of each node pod, where the step timer exposes T_i."""

    enabled: bool = True
    """Expose and collect per-node metrics."""
    port: int = Field(9400, ge=1024, le=65535)
    """Port of /metrics in every node pod, passed to the step timer as BIGMODEL_METRICS_PORT
    (9400, the runtime's default)."""


class TensorFlowOptions(ApiModel):
    """The TensorFlow roles besides the workers (`nodes`), as in TFJob's replica specs."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            rule(
                "self.evaluators <= 1",
                "tensorflow.evaluators: TensorFlow runs at most one evaluator",
                field_path=".evaluators",
            )
        )
    )

    parameter_servers: int = Field(0, ge=0, le=MAX_PARAMETER_SERVERS)
    """Parameter-server pods (`ps` in TF_CONFIG, pods `<job>-ps-<i>`); they never exit and
    are stopped when every worker has succeeded."""
    evaluators: int = Field(0, ge=0)
    """0 or 1: an evaluator pod (`evaluator` in TF_CONFIG, pod `<job>-evaluator`); its exit
    does not decide the job, and it is stopped when every worker has succeeded."""


_PYTORCH = f"self.framework == '{Framework.PYTORCH.value}'"
_TENSORFLOW = f"self.framework == '{Framework.TENSORFLOW.value}'"
_TASK_ENGINE = f"self.framework in ['{Framework.DASK.value}', '{Framework.SPARK.value}']"


class BigModelJobSpec(PodOptions):
    """Desired state of a BigModelJob."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            rule(
                "!has(self.elastic)"
                " || (self.nodes >= self.elastic.minNodes && self.nodes <= self.elastic.maxNodes)",
                "nodes must be within elastic.minNodes and elastic.maxNodes",
                field_path=".nodes",
            ),
            rule(
                "!has(self.procsPerNode) || self.gpusPerNode == 0"
                " || self.gpusPerNode % self.procsPerNode == 0",
                "procsPerNode must divide gpusPerNode, so that every process gets as many GPUs",
                field_path=".procsPerNode",
            ),
            rule(
                f"!has(self.env) || self.env.all(e, !e.name.startsWith('{RESERVED_ENV_PREFIX}'))",
                f"variables starting with {RESERVED_ENV_PREFIX} are set by the operator",
                field_path=".env",
            ),
            rule(
                "!has(self.gangScheduling) || !has(self.gangScheduling.minAvailable)"
                " || self.gangScheduling.minAvailable <= self.nodes",
                "gangScheduling.minAvailable must not exceed nodes",
                field_path=".gangScheduling.minAvailable",
            ),
            rule(
                f"!has(self.elastic) || {_PYTORCH}",
                "elastic applies only to framework pytorch (TensorFlow has no elastic"
                " rendezvous; Dask and Spark jobs have a fixed number of workers)",
                field_path=".elastic",
            ),
            rule(
                f"!has(self.tensorflow) || {_TENSORFLOW}",
                "tensorflow options apply only when framework is tensorflow",
                field_path=".tensorflow",
            ),
            rule(
                f"!({_TENSORFLOW}) || !has(self.procsPerNode) || self.procsPerNode == 1",
                "procsPerNode must be 1 for framework tensorflow (one process per pod)",
                field_path=".procsPerNode",
            ),
            rule(
                f"!({_TASK_ENGINE}) || !has(self.procsPerNode)",
                "procsPerNode does not apply to frameworks dask and spark (set the workers'"
                " threads or cores with resources)",
                field_path=".procsPerNode",
            ),
            rule(
                f"!({_TASK_ENGINE}) || self.gpusPerNode == 0",
                "gpusPerNode does not apply to frameworks dask and spark",
                field_path=".gpusPerNode",
            ),
            *(immutable(f) for f in IMMUTABLE_FIELDS),
            rule(
                "has(self.elastic) == has(oldSelf.elastic)",
                "elastic cannot be added or removed after creation",
                field_path=".elastic",
            ),
            rule(
                "has(self.elastic) || self.nodes == oldSelf.nodes",
                "nodes is immutable unless the job is elastic",
                field_path=".nodes",
            ),
        )
    )

    framework: Framework = Framework.PYTORCH
    """pytorch: the command runs under torchrun on every node; tensorflow: the command runs
    as given, one process per pod, with TFJob's TF_CONFIG; dask: a scheduler, `nodes`
    workers and the command as the client; spark: a standalone master, `nodes` workers and
    the command as the driver (client mode)."""
    image: str = Field(min_length=1, max_length=1024)
    """Container image with the framework and the training code."""
    command: list[LongString] = Field(min_length=1, max_length=64)
    """The per-process program as run on one machine, e.g. ["python", "train.py"]; for
    pytorch the operator runs it under torchrun."""
    args: list[LongString] = Field(default_factory=list, max_length=256)
    """Arguments appended to command."""
    nodes: int = Field(1, ge=1, le=MAX_NODES)
    """Number of nodes (pytorch: one pod, one torchrun agent each; when elastic, the desired
    count) or workers (tensorflow)."""
    procs_per_node: int | None = Field(None, ge=1, le=128)
    """Processes (ranks) per node; default: gpusPerNode, or 1 without GPUs."""
    gpus_per_node: int = Field(0, ge=0, le=16)
    """nvidia.com/gpu per node pod."""
    master_port: int = Field(29500, ge=1024, le=65535)
    """Port of the rendezvous on node 0 (pytorch), of every task's server (tensorflow)."""
    elastic: ElasticPolicy | None = None
    """Elastic training between minNodes and maxNodes (pytorch only); absent: a fixed
    gang."""
    tensorflow: TensorFlowOptions | None = None
    """Parameter servers and evaluator of a tensorflow job; absent: workers only."""
    run_policy: RunPolicy = defaulted(RunPolicy)
    """Restarts, deadlines, cleanup and suspension."""
    gang_scheduling: GangScheduling | None = None
    """Gang scheduling through a PodGroup; absent: disabled."""
    metrics: MetricsSpec = defaulted(MetricsSpec)
    """Per-node metrics endpoint."""
    telemetry: TelemetrySpec = defaulted(TelemetrySpec)
    """Straggler detection on the measured task times."""

    @property
    def effective_procs_per_node(self) -> int:
        """Processes per node after applying the default (one per GPU; one per pod for
        every other framework)."""
        if self.framework is not Framework.PYTORCH:
            return 1
        return self.procs_per_node or max(self.gpus_per_node, 1)


class NodeCounts(ApiModel):
    """Node pods by phase."""

    pending: int = Field(0, ge=0)
    """Pods not yet running."""
    running: int = Field(0, ge=0)
    """Pods running."""
    succeeded: int = Field(0, ge=0)
    """Pods that exited 0."""
    failed: int = Field(0, ge=0)
    """Pods that failed."""


class BigModelJobStatus(ResourceStatus):
    """Observed state of a BigModelJob."""

    phase: JobPhase | None = None
    """Pending, Running, Restarting, Suspended, Succeeded or Failed."""
    start_time: datetime | None = None
    """When the job first started running."""
    completion_time: datetime | None = None
    """When the job succeeded or failed."""
    restarts: int = Field(0, ge=0)
    """Restarts so far (counted against runPolicy.backoffLimit)."""
    nodes: NodeCounts = defaulted(NodeCounts)
    """Node pods by phase."""


class BigModelJob(ApiModel):
    """Distributed training: `nodes` pods running the command as its framework launches it."""

    api_version: Literal["bigmodel.dev/v1alpha1"] = "bigmodel.dev/v1alpha1"
    """APIVersion of the object."""
    kind: Literal["BigModelJob"] = "BigModelJob"
    """Kind of the object."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    """Standard object metadata."""
    spec: BigModelJobSpec
    """Desired state."""
    status: BigModelJobStatus = Field(default_factory=BigModelJobStatus)
    """Observed state, written by the operator."""
