"""Pure builders of a BigModelService's children: the Deployment of its replicas and the
ClusterIP Service in front of them.

The runtime decides the server command, health paths and default image: `torch` runs this
project's server (`python -m bigmodel.serving`), `vllm` the OpenAI-compatible vLLM server
(tensor parallel over the replica's GPUs), `custom` the user's image and command. The pod
template carries a hash of itself, so the controller can tell which replicas run the current
spec, and changing only the replica count never changes the template (never restarts pods).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from bigmodel import __version__
from bigmodel.api.service import BigModelService, Probe, ServingRuntime
from bigmodel.manifests.pods import (
    MANAGER,
    avoiding_machines,
    child_metadata,
    dump,
    merge,
    owned_settings_errors,
    recommended_labels,
    resources,
    scheduling,
    shm_mount,
    shm_volume,
)

SERVER_CONTAINER = "server"
HTTP_PORT_NAME = "http"
LABEL_SERVICE = "bigmodel.dev/service"
LABEL_ROLE = "bigmodel.dev/role"
TEMPLATE_HASH = "bigmodel.dev/template-hash"
"""Annotation of the pod template (and so of every replica): a hash of the template."""
SPEC_HASH = "bigmodel.dev/spec-hash"
"""Annotation of the Deployment and the Service: a hash of the manifest as built, replicas
left out (the controller applies a child again only when it changed)."""
TERMINATION_LOG = "/dev/termination-log"
STARTUP_PERIOD_SECONDS = 5
"""Period of the startup probe; its failure threshold covers `startupTimeoutSeconds`."""
PRE_STOP_SECONDS = 5
"""A stopping replica keeps serving this long before it gets SIGTERM (a preStop sleep): the
time for the endpoints of its Service to stop sending it new requests."""
GRACE_MARGIN_SECONDS = 10
"""Grace on top of the preStop sleep and maxRequestSeconds, for the server to exit."""
PROGRESS_MARGIN_SECONDS = 120
"""A rollout has startupTimeoutSeconds plus this to make progress before the Deployment
reports ProgressDeadlineExceeded."""
REVISION_HISTORY = 3

_OWNED_POD_FIELDS: dict[str, str | None] = {
    "terminationGracePeriodSeconds": "spec.maxRequestSeconds"
}
_OWNED_CONTAINER_FIELDS = {
    **{key: f"spec.{key}" for key in ("command", "args", "image")},
    "readinessProbe": "spec.readinessProbe",
    "livenessProbe": "spec.livenessProbe",
    "startupProbe": "spec.startupTimeoutSeconds",
    "lifecycle": "spec.maxRequestSeconds",
}


@dataclass(frozen=True)
class RuntimeImages:
    """Default images of the runtimes (the operator's settings; a spec's `image` wins)."""

    torch: str = f"bigmodel-server:{__version__}"
    vllm: str = "vllm/vllm-openai:v0.11.0"


@dataclass(frozen=True)
class HealthPaths:
    """Where a runtime answers its probes (None: a TCP check of the port)."""

    startup: str | None
    ready: str | None
    live: str | None


HEALTH = {
    ServingRuntime.TORCH: HealthPaths("/v2/health/live", "/v2/health/ready", "/v2/health/live"),
    ServingRuntime.VLLM: HealthPaths("/health", "/health", "/health"),
    ServingRuntime.CUSTOM: HealthPaths(None, None, None),
}


def service_labels(service: BigModelService, component: str) -> dict[str, str]:
    """The recommended labels plus `bigmodel.dev/service` of every child of the service."""
    name = service.metadata["name"]
    return {**recommended_labels("bigmodel-service", name, component), LABEL_SERVICE: name}


def replica_selector(service: BigModelService) -> dict[str, str]:
    """Labels that select exactly the replicas of the service (immutable once created)."""
    return {LABEL_SERVICE: service.metadata["name"], "app.kubernetes.io/managed-by": MANAGER}


def selector_string(service: BigModelService) -> str:
    """The replica selector as `kubectl get -l` and the scale subresource write it."""
    return ",".join(f"{k}={v}" for k, v in sorted(replica_selector(service).items()))


def url(service: BigModelService) -> str:
    """The in-cluster URL of the service."""
    meta = service.metadata
    return f"http://{meta['name']}.{meta['namespace']}.svc:{service.spec.port}"


def server_command(service: BigModelService, images: RuntimeImages) -> tuple[str, list[str]]:
    """The image and command line of the server container: the runtime's, or the spec's
    `image` and `command` instead; `args` always appended."""
    spec = service.spec
    model = spec.model
    port = str(spec.port)
    if spec.runtime is ServingRuntime.TORCH:
        assert model is not None  # the CRD requires a model for torch and vllm
        default = [
            *("python", "-m", "bigmodel.serving"),
            *("--model-name", model.name, "--model-uri", str(model.uri)),
            *("--host", "0.0.0.0", "--port", port),
            *("--device", "cuda" if spec.gpus_per_replica else "cpu"),
            *("--drain-seconds", str(spec.max_request_seconds)),
            *("--termination-message-path", TERMINATION_LOG),
        ]
        image = images.torch
    elif spec.runtime is ServingRuntime.VLLM:
        assert model is not None
        default = [
            *("vllm", "serve", model.uri or model.name, "--served-model-name", model.name),
            *("--host", "0.0.0.0", "--port", port),
            *("--tensor-parallel-size", str(spec.gpus_per_replica)),
        ]
        image = images.vllm
    else:
        default, image = [], ""
    command = list(spec.command) or default
    return spec.image or image, [*command, *spec.args]


def _handler(path: str | None, port: int) -> dict[str, Any]:
    if path is None:
        return {"tcpSocket": {"port": port}}
    return {"httpGet": {"path": path, "port": port}}


def _probe(probe: Probe, path: str | None, port: int) -> dict[str, Any]:
    return {
        **_handler(probe.path or path, port),
        "periodSeconds": probe.period_seconds,
        "timeoutSeconds": probe.timeout_seconds,
        "failureThreshold": probe.failure_threshold,
    }


def probes(service: BigModelService) -> dict[str, Any]:
    """Startup, readiness and liveness probes on the runtime's health paths (TCP for a
    custom server unless its probe names a path). The startup probe allows
    `startupTimeoutSeconds` for the model to load; liveness starts only after it passed."""
    spec = service.spec
    health = HEALTH[spec.runtime]
    startup_path = spec.liveness_probe.path or health.startup
    return {
        "startupProbe": {
            **_handler(startup_path, spec.port),
            "periodSeconds": STARTUP_PERIOD_SECONDS,
            "timeoutSeconds": spec.liveness_probe.timeout_seconds,
            "failureThreshold": math.ceil(spec.startup_timeout_seconds / STARTUP_PERIOD_SECONDS),
        },
        "readinessProbe": _probe(spec.readiness_probe, health.ready, spec.port),
        "livenessProbe": _probe(spec.liveness_probe, health.live, spec.port),
    }


def _server_container(service: BigModelService, images: RuntimeImages) -> dict[str, Any]:
    spec = service.spec
    image, command = server_command(service, images)
    container: dict[str, Any] = {
        "name": SERVER_CONTAINER,
        "image": image,
        "command": command[:1],
        "args": command[1:],
        "env": dump(spec.env),
        "envFrom": spec.env_from,
        "resources": resources(spec, spec.gpus_per_replica),
        "ports": [{"name": HTTP_PORT_NAME, "containerPort": spec.port, "protocol": "TCP"}],
        **probes(service),
        "lifecycle": {"preStop": {"sleep": {"seconds": PRE_STOP_SECONDS}}},
        "volumeMounts": [*dump(spec.volume_mounts), shm_mount()],
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if spec.image_pull_policy:
        container["imagePullPolicy"] = spec.image_pull_policy.value
    return {k: v for k, v in container.items() if v != []}


def content_hash(obj: Any) -> str:
    """A short, stable hash of a JSON value (keys sorted), as its identity."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _with_spec_hash(manifest: dict[str, Any]) -> dict[str, Any]:
    """`manifest` annotated with the hash of itself, replicas left out."""
    spec = {k: v for k, v in manifest["spec"].items() if k != "replicas"}
    manifest["metadata"]["annotations"][SPEC_HASH] = content_hash(
        {"metadata": manifest["metadata"], "spec": spec}
    )
    return manifest


def build_pod_template(service: BigModelService, images: RuntimeImages) -> dict[str, Any]:
    """The replicas' pod template, the overlay merged in, preferring other machines than
    those its stragglers were moved off, annotated with its own hash."""
    spec = service.spec
    overlay = spec.pod_template
    labels = {
        **overlay.metadata.labels,
        **service_labels(service, "server"),
        LABEL_ROLE: "replica",
    }
    metadata = child_metadata(service.metadata, "", labels)
    metadata.pop("name")
    metadata.pop("namespace")
    metadata["annotations"] |= overlay.metadata.annotations
    pod_spec: dict[str, Any] = {
        **scheduling(spec),
        "terminationGracePeriodSeconds": (
            PRE_STOP_SECONDS + spec.max_request_seconds + GRACE_MARGIN_SECONDS
        ),
        "containers": [_server_container(service, images)],
        "volumes": [*dump(spec.volumes), shm_volume(spec)],
    }
    merged = merge(pod_spec, overlay.spec)
    avoided = [r.machine for r in service.status.straggler_replacements]
    if avoided:  # preferred: a Deployment's pods must still schedule when nowhere else fits
        merged["affinity"] = avoiding_machines(merged.get("affinity"), avoided, required=False)
    template = {"metadata": metadata, "spec": merged}
    template["metadata"]["annotations"][TEMPLATE_HASH] = content_hash(template)
    return template


def build_deployment(
    service: BigModelService, replicas: int, images: RuntimeImages
) -> dict[str, Any]:
    """The Deployment `<name>` of `replicas` replicas, rolled out per `rollingUpdate`."""
    spec, name = service.spec, service.metadata["name"]
    return _with_spec_hash(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": child_metadata(service.metadata, name, service_labels(service, "server")),
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": replica_selector(service)},
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {
                        "maxSurge": spec.rolling_update.max_surge,
                        "maxUnavailable": spec.rolling_update.max_unavailable,
                    },
                },
                "revisionHistoryLimit": REVISION_HISTORY,
                "progressDeadlineSeconds": spec.startup_timeout_seconds + PROGRESS_MARGIN_SECONDS,
                "template": build_pod_template(service, images),
            },
        }
    )


def build_service(service: BigModelService) -> dict[str, Any]:
    """The ClusterIP Service `<name>` in front of the ready replicas."""
    name, port = service.metadata["name"], service.spec.port
    return _with_spec_hash(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": child_metadata(service.metadata, name, service_labels(service, "server")),
            "spec": {
                "type": "ClusterIP",
                "selector": replica_selector(service),
                "ports": [
                    {
                        "name": HTTP_PORT_NAME,
                        "port": port,
                        "targetPort": HTTP_PORT_NAME,
                        "protocol": "TCP",
                    }
                ],
            },
        }
    )


def spec_errors(service: BigModelService) -> list[str]:
    """Problems the schema cannot see: settings the operator owns, each naming its field."""
    return owned_settings_errors(
        service.spec,
        SERVER_CONTAINER,
        lambda _: False,
        _OWNED_POD_FIELDS,
        _OWNED_CONTAINER_FIELDS,
    )
