"""Telemetry settings (spec) and the T_i / T / S summary written into status."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from bigmodel.api.common import LIST_SET, ApiModel, defaulted, list_map

MAX_PER_NODE = 32
"""How many nodes (or replicas) status lists individually; the slowest come first."""
MAX_REPLACEMENTS = 16
"""The most stragglers one resource may replace (`stragglerPolicy.maxReplacements`)."""


class StragglerAction(StrEnum):
    """What the operator does about a straggler."""

    NONE = "None"
    REPLACE = "Replace"


class StragglerPolicySpec(ApiModel):
    """Whether and when the operator moves a straggler off its machine (docs/telemetry.md,
    "Acting on a straggler", lists the guard rails)."""

    action: StragglerAction = StragglerAction.NONE
    """None: report stragglers only. Replace: delete a straggler's pod and recreate it away
    from the machine it ran on (a job's gang restarts from its checkpoint, not counted
    against backoffLimit, and its pods never go back to that machine; a service's replica is
    deleted and its pod template prefers other machines from then on)."""
    after: int = Field(2, ge=1, le=100)
    """Windows (`windowSeconds` each) a node must have been flagged in a row before it is
    replaced."""
    max_replacements: int = Field(1, ge=0, le=MAX_REPLACEMENTS)
    """The most replacements over the resource's life (0: none)."""


class TelemetrySpec(ApiModel):
    """How the operator judges the measured task times T_i."""

    straggler_threshold: float = Field(0.75, ge=0.05, le=1.0)
    """A node is a straggler when its relative speed r_i = min_j T_j / T_i (the fastest node's
    task time over its own) stays below this value for windowSeconds (0.75: a node about 33%
    slower than the fastest one)."""
    window_seconds: int = Field(60, ge=5, le=3600)
    """Seconds of recent measurements that averages and straggler detection look at."""
    straggler_policy: StragglerPolicySpec = defaulted(StragglerPolicySpec)
    """What to do about a straggler (default: report it only)."""


class StragglerCause(StrEnum):
    """Why a straggler is slow, decided from the parts of its steps and its machine's
    readings against the median of its peers (docs/telemetry.md lists each cause's evidence
    and thresholds). A network that slows every rank alike is not a node's cause: it is the
    job's `CommunicationSlow` condition."""

    INPUT_PIPELINE = "InputPipeline"
    GPU_THROTTLED = "GpuThrottled"
    GPU_DEGRADED = "GpuDegraded"
    HOST_CPU = "HostCpu"
    MEMORY = "Memory"
    UNKNOWN = "Unknown"


class StragglerDetail(ApiModel):
    """One current straggler: why it is slow and by how much."""

    name: str = Field(max_length=253)
    """Pod name (also listed in `stragglers`)."""
    cause: StragglerCause = StragglerCause.UNKNOWN
    """The cause decided for it."""
    detail: str = Field("", max_length=1024)
    """The evidence, for people (e.g. `input wait 0.31s of 0.40s excess`)."""
    excess_seconds: float = Field(0.0, ge=0)
    """Its task time minus the median of its peers' (E = T_s - T_median), in seconds."""
    since: datetime | None = None
    """When it was first flagged in its current run of flagged windows."""


class StragglerReplacement(ApiModel):
    """One straggler moved off its machine by `stragglerPolicy`, with S before and after."""

    pod: str = Field(max_length=253)
    """The straggler's pod."""
    machine: str = Field(max_length=253)
    """The Kubernetes node it ran on, avoided by the resource's pods from then on."""
    cause: StragglerCause = StragglerCause.UNKNOWN
    """Why it was slow, as decided when it was replaced."""
    replaced_at: datetime
    """When the operator replaced it."""
    service_quality_before: float | None = Field(None, ge=0)
    """S just before the replacement, in tasks per second."""
    service_quality_after: float | None = Field(None, ge=0)
    """S first measured a full window after the replacement pods started."""


class NodeTelemetry(ApiModel):
    """The latest task time of one node (job) or replica (service)."""

    name: str = Field(max_length=253)
    """Pod name."""
    task_seconds: float = Field(ge=0)
    """T_i: seconds of its latest unit of work (a training step, or the mean request)."""
    time_to_first_token_seconds: float | None = Field(None, ge=0)
    """LLM services: the replica's time to first token at `tokens.percentile`."""
    time_per_output_token_seconds: float | None = Field(None, ge=0)
    """LLM services: the replica's time per output token at `tokens.percentile`."""


class TokenTelemetry(ApiModel):
    """An LLM service's token latency: each replica's percentile of its time-to-first-token
    and time-per-output-token histograms over the latest interval, averaged over the
    replicas (what the ttft and tpot autoscaling metrics keep at their target)."""

    percentile: float = Field(gt=0, lt=100)
    """The percentile read (spec.autoscaling.percentile, else 90)."""
    time_to_first_token_seconds: float | None = Field(None, ge=0)
    """TTFT: seconds from a request's arrival to its first output token."""
    time_per_output_token_seconds: float | None = Field(None, ge=0)
    """TPOT: seconds per output token after the first."""


class RunTelemetry(ApiModel):
    """T and S over the whole run (a job's, restarts included; a service's life), to compare
    runs by."""

    rounds: int = Field(0, ge=0)
    """Telemetry rounds that measured at least one T_i."""
    mean_total_task_seconds: float | None = Field(None, ge=0)
    """Mean of T over those rounds, in seconds."""
    mean_service_quality: float | None = Field(None, ge=0)
    """Mean of S over those rounds, in tasks per second."""


class ReadableTelemetry(ApiModel):
    """T and S as `kubectl get` shows them: three significant digits and a unit."""

    total: str | None = Field(None, max_length=32)
    """T, e.g. `1.23s` or `412ms`."""
    quality: str | None = Field(None, max_length=32)
    """S, e.g. `2.43/s`."""


class TelemetrySummary(ApiModel):
    """T_i, T and S as last measured from the pods (kept once the pods are gone or stop
    answering: `updatedAt` says when), and their means over the run."""

    n: int = Field(0, ge=0)
    """Number of nodes (replicas) that reported a task time."""
    total_task_seconds: float | None = Field(None, ge=0)
    """T = sum of T_i, in seconds."""
    service_quality: float | None = Field(None, ge=0)
    """S = (1/n) * sum of 1/T_i, in tasks per second."""
    slowest_node: str | None = Field(None, max_length=253)
    """Pod with the largest T_i."""
    stragglers: list[str] = Field(default_factory=list, max_length=1024, json_schema_extra=LIST_SET)
    """Pods currently detected as stragglers."""
    straggler_details: list[StragglerDetail] = Field(
        default_factory=list, max_length=MAX_PER_NODE, json_schema_extra=list_map("name")
    )
    """Why each current straggler is slow (at most 32, the slowest first)."""
    updated_at: datetime | None = None
    """When these values were collected."""
    per_node: list[NodeTelemetry] = Field(
        default_factory=list, max_length=MAX_PER_NODE, json_schema_extra=list_map("name")
    )
    """T_i of the slowest nodes, slowest first (at most 32)."""
    run: RunTelemetry | None = None
    """T and S over the whole run."""
    tokens: TokenTelemetry | None = None
    """LLM services: TTFT and TPOT (kept from the latest round that measured them)."""
    readable: ReadableTelemetry | None = None
    """T and S for people (the `kubectl get` columns)."""
