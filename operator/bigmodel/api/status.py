"""Kubernetes-style conditions and the status fields both kinds share."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from bigmodel.api.common import ApiModel, defaulted, list_map
from bigmodel.api.telemetry import MAX_REPLACEMENTS, StragglerReplacement, TelemetrySummary

UNOBSERVED = -1
"""status.observedGeneration of a resource the operator has not acted on yet: the CRD
defaults status to it, so kstatus tools (Flux) see a generation not yet observed and wait,
instead of taking a resource without status for reconciled (the convention of Flux's CRDs)."""


class ConditionStatus(StrEnum):
    """Whether a condition holds."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(ApiModel):
    """One aspect of the resource's state (Kubernetes metav1.Condition)."""

    type: str = Field(min_length=1, max_length=316, pattern=r"^[A-Za-z][A-Za-z0-9_.\-/]*$")
    """Condition type in CamelCase, e.g. Ready, Succeeded, StragglerDetected."""
    status: ConditionStatus
    """True, False or Unknown."""
    reason: str = Field(
        min_length=1, max_length=1024, pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
    )
    """Machine-readable CamelCase reason of the last transition."""
    message: str = Field("", max_length=32768)
    """Human-readable details."""
    last_transition_time: datetime
    """When the status last changed."""
    observed_generation: int | None = Field(None, ge=0)
    """metadata.generation the condition was computed from."""


class ResourceStatus(ApiModel):
    """Status fields of both kinds; written by the operator only."""

    observed_generation: int | None = Field(None, ge=UNOBSERVED)
    """metadata.generation the operator last acted on; -1 until it first does."""
    conditions: list[Condition] = Field(
        default_factory=list, max_length=32, json_schema_extra=list_map("type")
    )
    """Latest observations of the resource's state."""
    telemetry: TelemetrySummary = defaulted(TelemetrySummary)
    """Measured task times T_i and their summary T and S."""
    straggler_replacements: list[StragglerReplacement] = Field(
        default_factory=list, max_length=MAX_REPLACEMENTS
    )
    """Stragglers replaced by `spec.telemetry.stragglerPolicy`, oldest first (never counted
    as restarts against backoffLimit)."""
