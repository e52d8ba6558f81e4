"""Kubernetes core objects used in both specs, and the pod settings both kinds share."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import ConfigDict, Field

from bigmodel.api.common import (
    DNS_LABEL_PATTERN,
    ENV_NAME_PATTERN,
    FREE_FORM,
    ApiModel,
    Quantity,
    list_map,
    rule,
    validations,
)

GPU_RESOURCE = "nvidia.com/gpu"


class PodPhase(StrEnum):
    """A pod's status.phase (core/v1), as the kubelet reports it."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    UNKNOWN = "Unknown"


Name = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN)]
"""A DNS label, the name of a volume or secret."""

LongString = Annotated[str, Field(max_length=4096)]
"""A command-line word or environment value."""

Labels = Annotated[dict[str, Annotated[str, Field(max_length=63)]], Field(max_length=64)]


class PullPolicy(StrEnum):
    """When the kubelet pulls the image."""

    ALWAYS = "Always"
    IF_NOT_PRESENT = "IfNotPresent"
    NEVER = "Never"


class EnvVar(ApiModel):
    """An environment variable of the container (Kubernetes EnvVar)."""

    name: str = Field(min_length=1, max_length=256, pattern=ENV_NAME_PATTERN)
    """Variable name."""
    value: LongString | None = None
    """Literal value; mutually exclusive with valueFrom."""
    value_from: dict[str, Any] | None = None
    """Source of the value (secretKeyRef, configMapKeyRef, fieldRef, resourceFieldRef), as in
    a Kubernetes EnvVar."""


class Volume(ApiModel):
    """A pod volume, any Kubernetes volume source (emptyDir, persistentVolumeClaim, ...)."""

    model_config = ConfigDict(extra="allow")

    name: Name
    """Volume name, referenced by volumeMounts."""


class VolumeMount(ApiModel):
    """Where a volume is mounted in the container (Kubernetes VolumeMount)."""

    model_config = ConfigDict(extra="allow")

    name: Name
    """Name of the volume to mount."""
    mount_path: str = Field(min_length=1, max_length=1024, pattern=r"^/")
    """Absolute path in the container."""


class Toleration(ApiModel):
    """A taint the pods tolerate (Kubernetes Toleration)."""

    key: str | None = Field(None, max_length=316)
    """Taint key; empty with operator Exists matches every taint."""
    operator: str | None = Field(None, pattern=r"^(Exists|Equal)$")
    """Exists or Equal (default Equal)."""
    value: str | None = Field(None, max_length=63)
    """Taint value for operator Equal."""
    effect: str | None = Field(None, pattern=r"^(NoSchedule|PreferNoSchedule|NoExecute)?$")
    """Taint effect to match; empty matches all."""
    toleration_seconds: int | None = None
    """For NoExecute: seconds the pod stays bound after the taint appears."""


class LocalObjectReference(ApiModel):
    """A reference to an object in the same namespace."""

    name: Name
    """Object name."""


NO_GPU_RESOURCE = validations(
    rule(
        f"!('{GPU_RESOURCE}' in self)",
        "set GPUs with gpusPerNode or gpusPerReplica, not in resources",
    )
)


class ResourceRequirements(ApiModel):
    """Compute resources of the main container. GPUs are set with the GPU count field."""

    requests: dict[str, Quantity] = Field(
        default_factory=dict, max_length=16, json_schema_extra=NO_GPU_RESOURCE
    )
    """Minimum resources, e.g. `{cpu: "4", memory: 32Gi}`."""
    limits: dict[str, Quantity] = Field(
        default_factory=dict, max_length=16, json_schema_extra=NO_GPU_RESOURCE
    )
    """Maximum resources, e.g. `{memory: 64Gi}`."""


class ObjectMetaOverlay(ApiModel):
    """Labels and annotations added to every pod."""

    labels: Labels = Field(default_factory=dict)
    """Labels added to every pod (the operator's own labels win)."""
    annotations: dict[str, str] = Field(default_factory=dict, max_length=64)
    """Annotations added to every pod."""


class PodTemplateOverlay(ApiModel):
    """Anything else of the pods: merged into every pod the operator creates."""

    metadata: ObjectMetaOverlay = Field(default_factory=ObjectMetaOverlay)
    """Labels and annotations of the pods."""
    spec: dict[str, Any] = Field(default_factory=dict, json_schema_extra=FREE_FORM)
    """Fields of a Kubernetes PodSpec merged into every pod (containers are merged by name;
    the main container is named `main`)."""


class PodOptions(ApiModel):
    """Settings of the pods shared by BigModelJob and BigModelService."""

    image_pull_policy: PullPolicy | None = None
    """Always, IfNotPresent or Never; default as in Kubernetes (Always for `:latest`)."""
    resources: ResourceRequirements = Field(default_factory=ResourceRequirements)
    """CPU, memory and other resources of the main container."""
    env: list[EnvVar] = Field(
        default_factory=list, max_length=256, json_schema_extra=list_map("name")
    )
    """Environment variables of the main container."""
    env_from: list[dict[str, Any]] = Field(default_factory=list, max_length=32)
    """Sources of environment variables (configMapRef, secretRef), as in Kubernetes."""
    volumes: list[Volume] = Field(
        default_factory=list, max_length=64, json_schema_extra=list_map("name")
    )
    """Volumes of the pods."""
    volume_mounts: list[VolumeMount] = Field(
        default_factory=list, max_length=64, json_schema_extra=list_map("mountPath")
    )
    """Volume mounts of the main container."""
    shm_size: Quantity = "1Gi"
    """Size of the in-memory /dev/shm (PyTorch data loaders and NCCL need more than the
    container default of 64Mi); it counts against the pod's memory."""
    node_selector: Labels = Field(default_factory=dict)
    """Labels a node must have to run the pods."""
    tolerations: list[Toleration] = Field(default_factory=list, max_length=32)
    """Taints the pods tolerate."""
    affinity: dict[str, Any] = Field(default_factory=dict, json_schema_extra=FREE_FORM)
    """Kubernetes Affinity of the pods (nodeAffinity, podAffinity, podAntiAffinity)."""
    priority_class_name: Name | None = None
    """PriorityClass of the pods."""
    scheduler_name: Name | None = None
    """Scheduler of the pods (default: the cluster's default scheduler)."""
    service_account_name: Name | None = None
    """ServiceAccount the pods run as."""
    image_pull_secrets: list[LocalObjectReference] = Field(
        default_factory=list, max_length=16, json_schema_extra=list_map("name")
    )
    """Secrets used to pull the image."""
    pod_template: PodTemplateOverlay = Field(default_factory=PodTemplateOverlay)
    """Overlay for every other pod setting."""
