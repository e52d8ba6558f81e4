"""BigModelService: a model served over HTTP by a scalable set of replicas."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import ConfigDict, Field

from bigmodel.api.common import ApiModel, IntOrPercent, defaulted, rule, validations
from bigmodel.api.core import LongString, PodOptions
from bigmodel.api.status import ResourceStatus
from bigmodel.api.telemetry import TelemetrySpec

MAX_REPLICAS = 1000


class ServingRuntime(StrEnum):
    """Which server runs in the replicas."""

    TORCH = "torch"
    VLLM = "vllm"
    CUSTOM = "custom"


class ScalingMetric(StrEnum):
    """The measurement autoscaling keeps at its target."""

    SERVICE_QUALITY = "serviceQuality"
    LATENCY = "latency"
    IN_FLIGHT = "inFlight"
    TTFT = "ttft"
    TPOT = "tpot"


TOKEN_METRICS = (ScalingMetric.TTFT, ScalingMetric.TPOT)
"""Metrics read at a percentile of a token-latency histogram."""
DEFAULT_PERCENTILE = 90.0
"""The percentile of ttft and tpot when spec.autoscaling.percentile is not set."""


class ServicePhase(StrEnum):
    """Lifecycle phase of a BigModelService."""

    PENDING = "Pending"
    PROGRESSING = "Progressing"
    READY = "Ready"
    FAILED = "Failed"


class ModelSource(ApiModel):
    """The model the server loads."""

    name: str = Field(min_length=1, max_length=253)
    """Model name clients request (the OpenAI `model` field)."""
    uri: str | None = Field(None, min_length=1, max_length=2048)
    """Where the weights are: for torch (required), a trainer checkpoint file or directory,
    or a Hugging Face-format model directory (config.json, safetensors, tokenizer), in the
    container (on a mounted volume), or hf://org/name from a Hugging Face cache there; for
    vllm, a Hugging Face id or a path (default: name)."""


class Autoscaling(ApiModel):
    """Scale replicas between minReplicas and maxReplicas to keep a measurement at a target."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            rule(
                "self.minReplicas <= self.maxReplicas",
                "minReplicas must be less than or equal to maxReplicas",
                field_path=".minReplicas",
            ),
            rule(
                "!has(self.percentile) || self.metric in ['ttft', 'tpot']",
                "percentile is only for the metrics ttft and tpot (a percentile of their"
                " histograms); inFlight, latency and serviceQuality take none",
                field_path=".percentile",
            ),
        )
    )

    min_replicas: int = Field(1, ge=1, le=MAX_REPLICAS)
    """Fewest replicas."""
    max_replicas: int = Field(ge=1, le=MAX_REPLICAS)
    """Most replicas."""
    metric: ScalingMetric = ScalingMetric.SERVICE_QUALITY
    """serviceQuality: S, the mean over replicas of 1/T_i, where T_i is the replica's mean
    request seconds (with batching this is not the throughput: a replica serving 8 requests
    at once in 2 s has 1/T_i = 0.5), in 1/s, scale up below target; latency: mean request
    seconds T/n over the replicas, scale up above target; inFlight: requests running plus
    waiting per ready replica, scale up above target; ttft: time to first token, tpot: time
    per output token, in seconds at `percentile` (each replica's, from its histogram over the
    telemetry interval, averaged over the replicas), scale up above target."""
    target: float = Field(gt=0)
    """Target value of the metric, in its unit (1/s, seconds or requests)."""
    percentile: float | None = Field(None, gt=0, lt=100)
    """ttft and tpot only: the percentile kept at target, above 0 and below 100 (default 90:
    p90 TTFT <= target)."""
    scale_up_stabilization_seconds: int = Field(0, ge=0, le=3600)
    """Seconds the metric must call for more replicas before scaling up (the lowest
    recommendation of the window is taken)."""
    scale_down_stabilization_seconds: int = Field(300, ge=0, le=3600)
    """Seconds the metric must call for fewer replicas before scaling down (the highest
    recommendation of the window is taken)."""

    @property
    def effective_percentile(self) -> float | None:
        """The percentile the metric is read at (ttft and tpot), None for the others."""
        if self.metric not in TOKEN_METRICS:
            return None
        return DEFAULT_PERCENTILE if self.percentile is None else self.percentile


class Probe(ApiModel):
    """An HTTP probe of the server."""

    path: str | None = Field(None, max_length=1024, pattern=r"^/")
    """HTTP path; default: the runtime's health path."""
    period_seconds: int = Field(10, ge=1, le=300)
    """Seconds between probes."""
    timeout_seconds: int = Field(5, ge=1, le=300)
    """Seconds after which a probe fails."""
    failure_threshold: int = Field(3, ge=1, le=100)
    """Consecutive failures that count as failed."""


class RollingUpdate(ApiModel):
    """How a changed spec rolls out over the replicas (as a Deployment's rolling update)."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            rule(
                "!(string(self.maxSurge) in ['0', '0%']"
                " && string(self.maxUnavailable) in ['0', '0%'])",
                "maxSurge and maxUnavailable cannot both be 0",
            )
        )
    )

    max_surge: IntOrPercent = "25%"
    """Replicas created above the desired count during an update."""
    max_unavailable: IntOrPercent = "25%"
    """Replicas that may be unavailable during an update."""


class BigModelServiceSpec(PodOptions):
    """Desired state of a BigModelService."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            rule(
                "self.runtime != 'custom' || (has(self.image) && has(self.command)"
                " && size(self.command) > 0)",
                "runtime custom needs image and command",
                field_path=".command",
                reason="FieldValueRequired",
            ),
            rule(
                "self.runtime == 'custom' || has(self.model)",
                "runtimes torch and vllm need model",
                field_path=".model",
                reason="FieldValueRequired",
            ),
            rule(
                "self.runtime != 'torch' || (has(self.model) && has(self.model.uri))",
                "runtime torch needs model.uri: a trainer checkpoint (a step-*.pt file, or a"
                " directory whose latest one is served) or a Hugging Face-format model"
                " directory, on a volume mounted in the replicas",
                field_path=".model.uri",
                reason="FieldValueRequired",
            ),
            rule(
                "self.runtime != 'vllm' || self.gpusPerReplica >= 1",
                "runtime vllm needs gpusPerReplica >= 1 (its tensor parallel size)",
                field_path=".gpusPerReplica",
            ),
            rule(
                "!(has(self.replicas) && has(self.autoscaling))",
                "spec.replicas cannot be set on an autoscaled service (spec.autoscaling is set):"
                " the operator scales it between minReplicas and maxReplicas; change"
                " spec.autoscaling, or remove it to scale by hand",
                field_path=".replicas",
            ),
        )
    )

    runtime: ServingRuntime = ServingRuntime.TORCH
    """torch: this project's server; vllm: OpenAI-compatible vLLM, tensor parallel over the
    replica's GPUs; custom: your image and command."""
    image: str | None = Field(None, min_length=1, max_length=1024)
    """Container image; default: the operator's image for the runtime."""
    command: list[LongString] = Field(default_factory=list, max_length=64)
    """Server command (required for custom; replaces the runtime's command otherwise)."""
    args: list[LongString] = Field(default_factory=list, max_length=256)
    """Arguments appended to the command."""
    model: ModelSource | None = None
    """The model to serve (required for torch and vllm)."""
    replicas: int | None = Field(None, ge=0, le=MAX_REPLICAS)
    """Fixed number of replicas (default 1); also set by `kubectl scale`, HPA and KEDA
    through the scale subresource. Not with autoscaling: an autoscaled service is scaled by
    the operator, and scaling it by hand is refused."""
    autoscaling: Autoscaling | None = None
    """Scale on measured load instead of a fixed replica count."""
    gpus_per_replica: int = Field(0, ge=0, le=16)
    """nvidia.com/gpu per replica."""
    port: int = Field(8000, ge=1024, le=65535)
    """HTTP port of the server (also serves /metrics)."""
    readiness_probe: Probe = defaulted(Probe)
    """When a replica receives traffic."""
    liveness_probe: Probe = defaulted(Probe)
    """When a replica is restarted."""
    startup_timeout_seconds: int = Field(600, ge=10, le=7200)
    """Seconds a replica may take to start and load the model (its startup probe) before
    liveness probes start; a replica not started by then is restarted."""
    max_request_seconds: int = Field(300, ge=1, le=86400)
    """Longest request a replica must be able to finish when it stops (scale down, rollout,
    node drain): its termination grace period is this plus the time to drain new traffic."""
    rolling_update: RollingUpdate = defaulted(RollingUpdate)
    """How updates roll out."""
    telemetry: TelemetrySpec = defaulted(TelemetrySpec)
    """Averaging window and straggler detection of replica request times."""


class AutoscalingStatus(ApiModel):
    """What the autoscaler measured and decided last."""

    metric: ScalingMetric
    """The metric it scales on."""
    percentile: float | None = None
    """ttft and tpot: the percentile the metric is read at."""
    current: float | None = None
    """Latest value of the metric (absent while no replica reported it)."""
    target: float
    """Target value of the metric."""
    recommended_replicas: int | None = Field(None, ge=0)
    """Replicas the latest measurement asks for, before clamping and stabilization."""
    last_scale_time: datetime | None = None
    """When the autoscaler last changed the desired replicas."""


class BigModelServiceStatus(ResourceStatus):
    """Observed state of a BigModelService."""

    phase: ServicePhase | None = None
    """Pending, Progressing, Ready or Failed."""
    replicas: int = Field(0, ge=0)
    """Replicas that exist (the scale subresource's status.replicas)."""
    desired_replicas: int | None = Field(None, ge=0)
    """Replicas the service should have now: spec.replicas, or the autoscaler's decision."""
    updated_replicas: int = Field(0, ge=0)
    """Replicas that run the current spec."""
    ready_replicas: int = Field(0, ge=0)
    """Replicas passing their readiness probe."""
    autoscaling: AutoscalingStatus | None = None
    """The autoscaler's latest measurement and decision (autoscaled services only)."""
    url: str | None = Field(None, max_length=2048)
    """In-cluster URL of the service."""
    selector: str | None = Field(None, max_length=4096)
    """Label selector of the replicas' pods, as a string (for the scale subresource)."""


class BigModelService(ApiModel):
    """A model served over HTTP by replicas behind a ClusterIP Service."""

    api_version: Literal["bigmodel.dev/v1alpha1"] = "bigmodel.dev/v1alpha1"
    """APIVersion of the object."""
    kind: Literal["BigModelService"] = "BigModelService"
    """Kind of the object."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    """Standard object metadata."""
    spec: BigModelServiceSpec
    """Desired state."""
    status: BigModelServiceStatus = Field(default_factory=BigModelServiceStatus)
    """Observed state, written by the operator."""
