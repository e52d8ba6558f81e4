"""Condition types and reasons the operator writes, in one place (never bare strings).

The values are part of the API: users and tools (`kubectl wait --for=condition=...`, alerts,
GitOps health checks) match on them, so a value never changes once released.
"""

from __future__ import annotations

from enum import StrEnum


class ConditionType(StrEnum):
    """`status.conditions[].type` of both kinds."""

    # BigModelJob
    CREATED = "Created"
    RUNNING = "Running"
    RESTARTING = "Restarting"
    SUSPENDED = "Suspended"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    DEGRADED = "Degraded"
    SPEC_APPLIED = "SpecApplied"
    PODS_UNSCHEDULABLE = "PodsUnschedulable"
    """True while node pods wait for a node (the scheduler's message quoted); its
    lastTransitionTime says since when. False once none does."""
    PODS_FAILING_TO_START = "PodsFailingToStart"
    """True while the kubelet cannot start a node pod's container (image pull, container
    configuration or creation errors, its reason and message quoted). False once none."""
    # Both kinds: the kstatus summary GitOps tools read (Flux, kubectl wait, Argo CD checks)
    READY = "Ready"
    RECONCILING = "Reconciling"
    STALLED = "Stalled"
    # BigModelService
    AVAILABLE = "Available"
    PROGRESSING = "Progressing"
    MODEL_LOADED = "ModelLoaded"
    SCALING_LIMITED = "ScalingLimited"
    # Both kinds (written by telemetry)
    STRAGGLER_DETECTED = "StragglerDetected"
    # BigModelJob (written by telemetry)
    COMMUNICATION_SLOW = "CommunicationSlow"
    """True while every rank's exposed gradient communication stays well above the job's
    best round's (a slow network slows all ranks alike; not a node's straggler cause)."""


class Reason(StrEnum):
    """`status.conditions[].reason` values, and the reasons of the events posted with them."""

    # Job lifecycle
    PODS_CREATED = "PodsCreated"
    NODES_RUNNING = "NodesRunning"
    GANG_RESTART = "GangRestart"
    GANG_RECREATED = "GangRecreated"
    RESTARTING = "Restarting"
    SUSPENDED = "Suspended"
    RESUMED = "Resumed"
    ENOUGH_NODES = "EnoughNodes"
    BELOW_MIN_NODES = "BelowMinNodes"
    PENDING_RESTART = "PendingRestart"
    APPLIED = "Applied"
    NODE_REPLACED = "NodeReplaced"
    NODES_PENDING = "NodesPending"
    # Why node pods wait
    UNSCHEDULABLE = "Unschedulable"
    PODS_SCHEDULED = "PodsScheduled"
    CONTAINERS_CANNOT_START = "ContainersCannotStart"
    CONTAINERS_STARTING = "ContainersStarting"
    # Why a job ended
    NODES_SUCCEEDED = "NodesSucceeded"
    INVALID = "Invalid"
    DEADLINE_EXCEEDED = "DeadlineExceeded"
    BACKOFF_LIMIT_EXCEEDED = "BackoffLimitExceeded"
    NON_RETRYABLE_EXIT_CODE = "NonRetryableExitCode"
    POD_FAILED = "PodFailed"
    GANG_SCHEDULER_UNAVAILABLE = "GangSchedulerUnavailable"
    # Service lifecycle
    CREATING = "Creating"
    ROLLING_OUT = "RollingOut"
    SCALING = "Scaling"
    ROLLOUT_COMPLETE = "RolloutComplete"
    REPLICAS_READY = "ReplicasReady"
    REPLICAS_AVAILABLE = "ReplicasAvailable"
    NO_REPLICAS_AVAILABLE = "NoReplicasAvailable"
    MODEL_LOADING = "ModelLoading"
    MODEL_LOADED = "ModelLoaded"
    MODEL_LOAD_FAILED = "ModelLoadFailed"
    NO_REPLICAS = "NoReplicas"
    PROGRESS_DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"
    SCALED_UP = "ScaledUp"
    SCALED_DOWN = "ScaledDown"
    # Autoscaling
    TOO_FEW_REPLICAS = "TooFewReplicas"
    TOO_MANY_REPLICAS = "TooManyReplicas"
    DESIRED_WITHIN_RANGE = "DesiredWithinRange"
    # Telemetry
    SLOW_NODES = "SlowNodes"
    NO_STRAGGLERS = "NoStragglers"
    STRAGGLER_DETECTED = "StragglerDetected"
    STRAGGLER_RECOVERED = "StragglerRecovered"
    STRAGGLERS_CLEARED = "StragglersCleared"
    SLOW_COMMUNICATION = "SlowCommunication"
    COMMUNICATION_NORMAL = "CommunicationNormal"
    STRAGGLER_REPLACED = "StragglerReplaced"
    REPLACEMENT_MEASURED = "ReplacementMeasured"


JOB_CONDITIONS = frozenset(
    {
        ConditionType.CREATED,
        ConditionType.RUNNING,
        ConditionType.RESTARTING,
        ConditionType.SUSPENDED,
        ConditionType.SUCCEEDED,
        ConditionType.FAILED,
        ConditionType.DEGRADED,
        ConditionType.SPEC_APPLIED,
        ConditionType.READY,
        ConditionType.RECONCILING,
        ConditionType.STALLED,
        ConditionType.PODS_UNSCHEDULABLE,
        ConditionType.PODS_FAILING_TO_START,
    }
)
"""Condition types the job controller writes (telemetry writes StragglerDetected)."""

SERVICE_CONDITIONS = frozenset(
    {
        ConditionType.READY,
        ConditionType.AVAILABLE,
        ConditionType.PROGRESSING,
        ConditionType.MODEL_LOADED,
        ConditionType.SCALING_LIMITED,
        ConditionType.RECONCILING,
        ConditionType.STALLED,
    }
)
"""Condition types the service controller writes (telemetry writes StragglerDetected)."""
