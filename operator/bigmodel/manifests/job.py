"""Pure builders of a BigModelJob's children: the headless Service, node pods and PodGroup.

Every function takes the parsed job (whose `metadata` carries name, namespace, uid, labels,
annotations and generation) and returns plain manifests; the controller adds the owner
reference and creates them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from bigmodel.api.core import GPU_RESOURCE
from bigmodel.api.job import RESERVED_ENV_PREFIX, BigModelJob, GangScheduler
from bigmodel.manifests.names import node_pod_name, service_name

MAIN_CONTAINER = "main"
SHM_VOLUME = "dshm"
SHM_PATH = "/dev/shm"
METRICS_PORT_NAME = "metrics"
RENDEZVOUS_PORT_NAME = "rendezvous"
MANAGER = "bigmodel-operator"

LABEL_JOB = "bigmodel.dev/job"
LABEL_RANK = "bigmodel.dev/node-rank"
LABEL_ROLE = "bigmodel.dev/role"
GENERATION_ANNOTATION = "bigmodel.dev/generation"
"""metadata.generation of the job a node pod was built from."""

KUEUE_QUEUE = "kueue.x-k8s.io/queue-name"
KUEUE_GROUP = "kueue.x-k8s.io/pod-group-name"
KUEUE_TOTAL = "kueue.x-k8s.io/pod-group-total-count"

VOLCANO_API = "scheduling.volcano.sh/v1beta1"
COSCHEDULING_API = "scheduling.x-k8s.io/v1alpha1"
POD_GROUP_API = {
    GangScheduler.VOLCANO: VOLCANO_API,
    GangScheduler.SCHEDULER_PLUGINS: COSCHEDULING_API,
}
GANG_SCHEDULER_NAME = {
    GangScheduler.VOLCANO: "volcano",
    GangScheduler.SCHEDULER_PLUGINS: "scheduler-plugins-scheduler",
}
VOLCANO_GROUP_ANNOTATION = "scheduling.k8s.io/group-name"
COSCHEDULING_GROUP_LABEL = "scheduling.x-k8s.io/pod-group"

OWNED_ENV = frozenset({"PYTHONUNBUFFERED", "BIGMODEL_METRICS_PORT", "BIGMODEL_METRICS_HOST"})
"""Variables the operator sets besides the `PET_` ones (all refused in user env)."""

# Keys on the job that belong to tools, not to the user: never copied to children.
_PRIVATE_KEY_PREFIXES = ("kopf.zalando.org/", "bigmodel.dev/", "kubectl.kubernetes.io/")
_OWNED_POD_FIELDS = ("restartPolicy", "hostname", "subdomain")
_OWNED_CONTAINER_FIELDS = ("command", "args", "image")
_PYTHONS = ("python", "python3")


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


def _public(items: Mapping[str, str]) -> dict[str, str]:
    """Labels or annotations without kopf's, kubectl's and the operator's own keys."""
    return {k: v for k, v in items.items() if not k.startswith(_PRIVATE_KEY_PREFIXES)}


def job_labels(job: BigModelJob, component: str) -> dict[str, str]:
    """The recommended labels plus `bigmodel.dev/job` of every child of the job."""
    name = job.metadata["name"]
    return {
        "app.kubernetes.io/name": "bigmodel-job",
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "bigmodel",
        "app.kubernetes.io/managed-by": MANAGER,
        LABEL_JOB: name,
    }


def pod_selector(job: BigModelJob) -> dict[str, str]:
    """Labels that select exactly the node pods of the job."""
    return {LABEL_JOB: job.metadata["name"], "app.kubernetes.io/managed-by": MANAGER}


def _metadata(job: BigModelJob, name: str, labels: Mapping[str, str]) -> dict[str, Any]:
    """Child metadata: the job's public labels and annotations under ours."""
    meta = job.metadata
    return {
        "name": name,
        "namespace": meta.get("namespace"),
        "labels": {**_public(meta.get("labels") or {}), **labels},
        "annotations": _public(meta.get("annotations") or {}),
    }


def build_service(job: BigModelJob) -> dict[str, Any]:
    """The headless Service `<job>` that gives node pods their DNS names; it publishes pods
    before they are ready, since the rendezvous happens before any readiness."""
    spec = job.spec
    ports = [{"name": RENDEZVOUS_PORT_NAME, "port": spec.master_port, "protocol": "TCP"}]
    if spec.metrics.enabled:
        ports.append({"name": METRICS_PORT_NAME, "port": spec.metrics.port, "protocol": "TCP"})
    name = service_name(job.metadata["name"])
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(job, name, job_labels(job, "rendezvous")),
        "spec": {
            "clusterIP": "None",
            "selector": pod_selector(job),
            "publishNotReadyAddresses": True,
            "ports": ports,
        },
    }


def min_members(job: BigModelJob) -> int:
    """Pods the gang scheduler must place together."""
    spec = job.spec
    if spec.gang_scheduling and spec.gang_scheduling.min_available:
        return spec.gang_scheduling.min_available
    return spec.elastic.min_nodes if spec.elastic else spec.nodes


def build_pod_group(job: BigModelJob) -> dict[str, Any] | None:
    """The PodGroup of Volcano or scheduler-plugins, or None without gang scheduling."""
    gang = job.spec.gang_scheduling
    if gang is None:
        return None
    spec: dict[str, Any] = {"minMember": min_members(job)}
    if gang.scheduler is GangScheduler.VOLCANO and job.spec.priority_class_name:
        spec["priorityClassName"] = job.spec.priority_class_name
    if gang.scheduler is GangScheduler.SCHEDULER_PLUGINS and gang.schedule_timeout_seconds:
        spec["scheduleTimeoutSeconds"] = gang.schedule_timeout_seconds
    return {
        "apiVersion": POD_GROUP_API[gang.scheduler],
        "kind": "PodGroup",
        "metadata": _metadata(job, job.metadata["name"], job_labels(job, "pod-group")),
        "spec": spec,
    }


def _env(name: str, value: str | int) -> dict[str, Any]:
    return {"name": name, "value": str(value)}


def torchrun_env(job: BigModelJob, rank: int) -> list[dict[str, Any]]:
    """The torchrun contract of node `rank` (PyTorchJob-compatible `PET_*` variables)."""
    spec, name = job.spec, job.metadata["name"]
    master = f"{node_pod_name(name, 0)}.{service_name(name)}"
    nnodes: str | int = spec.nodes
    env = [
        _env("PET_NPROC_PER_NODE", spec.effective_procs_per_node),
        _env("PET_NODE_RANK", rank),
        _env("PET_MASTER_ADDR", master),
        _env("PET_MASTER_PORT", spec.master_port),
    ]
    if spec.elastic:
        nnodes = f"{spec.elastic.min_nodes}:{spec.elastic.max_nodes}"
        env += [
            _env("PET_RDZV_BACKEND", "c10d"),
            _env("PET_RDZV_ENDPOINT", f"{master}:{spec.master_port}"),
            _env("PET_RDZV_ID", job.metadata["uid"]),
            _env("PET_MAX_RESTARTS", spec.elastic.max_restarts),
        ]
    return [_env("PET_NNODES", nnodes), *env, _env("PYTHONUNBUFFERED", "1")]


def _metrics_env(job: BigModelJob) -> list[dict[str, Any]]:
    """Where the step timer serves /metrics: the pod's own IP (pods may share a host)."""
    if not job.spec.metrics.enabled:
        return []
    pod_ip = {"fieldRef": {"fieldPath": "status.podIP"}}
    return [
        _env("BIGMODEL_METRICS_PORT", job.spec.metrics.port),
        {"name": "BIGMODEL_METRICS_HOST", "valueFrom": pod_ip},
    ]


def _resources(job: BigModelJob) -> dict[str, Any]:
    """Requests and limits of the main container, GPUs in both."""
    spec = job.spec
    requests: dict[str, Any] = dict(spec.resources.requests)
    limits: dict[str, Any] = dict(spec.resources.limits)
    if spec.gpus_per_node:
        requests[GPU_RESOURCE] = limits[GPU_RESOURCE] = str(spec.gpus_per_node)
    resources = {"requests": requests, "limits": limits}
    return {k: v for k, v in resources.items() if v}


def _dump(items: Iterable[Any]) -> list[dict[str, Any]]:
    return [item.model_dump(mode="json", by_alias=True, exclude_none=True) for item in items]


def _main_container(job: BigModelJob, rank: int) -> dict[str, Any]:
    spec = job.spec
    ports = [{"name": RENDEZVOUS_PORT_NAME, "containerPort": spec.master_port}]
    if spec.metrics.enabled:
        ports.append({"name": METRICS_PORT_NAME, "containerPort": spec.metrics.port})
    container: dict[str, Any] = {
        "name": MAIN_CONTAINER,
        "image": spec.image,
        "command": ["torchrun"],
        "args": torchrun_args(spec.command, spec.args),
        "env": [*torchrun_env(job, rank), *_metrics_env(job), *_dump(spec.env)],
        "envFrom": spec.env_from,
        "resources": _resources(job),
        "ports": ports,
        "volumeMounts": [*_dump(spec.volume_mounts), {"name": SHM_VOLUME, "mountPath": SHM_PATH}],
    }
    if spec.image_pull_policy:
        container["imagePullPolicy"] = spec.image_pull_policy.value
    return {k: v for k, v in container.items() if v != []}


def _scheduling(job: BigModelJob) -> dict[str, Any]:
    """nodeSelector, tolerations, affinity and the other scheduling fields that are set."""
    spec = job.spec
    fields: dict[str, Any] = {
        "nodeSelector": spec.node_selector,
        "tolerations": _dump(spec.tolerations),
        "affinity": spec.affinity,
        "priorityClassName": spec.priority_class_name,
        "schedulerName": spec.scheduler_name,
        "serviceAccountName": spec.service_account_name,
        "imagePullSecrets": _dump(spec.image_pull_secrets),
    }
    gang = spec.gang_scheduling
    if gang and not spec.scheduler_name:
        fields["schedulerName"] = GANG_SCHEDULER_NAME[gang.scheduler]
    return {k: v for k, v in fields.items() if v}


def _group_metadata(job: BigModelJob) -> tuple[dict[str, str], dict[str, str]]:
    """Labels and annotations that gang schedulers and Kueue read from each pod."""
    name, labels, annotations = job.metadata["name"], {}, {}
    gang = job.spec.gang_scheduling
    if gang and gang.scheduler is GangScheduler.VOLCANO:
        annotations[VOLCANO_GROUP_ANNOTATION] = name
    if gang and gang.scheduler is GangScheduler.SCHEDULER_PLUGINS:
        labels[COSCHEDULING_GROUP_LABEL] = name
    queue = (job.metadata.get("labels") or {}).get(KUEUE_QUEUE)
    if queue:
        labels |= {KUEUE_QUEUE: queue, KUEUE_GROUP: name}
        annotations[KUEUE_TOTAL] = str(job.spec.nodes)
    return labels, annotations


def merge(base: Any, overlay: Any) -> Any:
    """`overlay` merged into `base`: objects key by key, lists of named objects (containers,
    volumes, env) by name, any other value replaced."""
    if isinstance(base, dict) and isinstance(overlay, dict):
        merged = dict(base)
        for key, value in overlay.items():
            merged[key] = merge(base[key], value) if key in base else value
        return merged
    if isinstance(base, list) and isinstance(overlay, list) and _named(base + overlay):
        by_name = {item["name"]: item for item in overlay}
        kept = [merge(item, by_name.pop(item["name"], item)) for item in base]
        return kept + list(by_name.values())
    return overlay


def _named(items: list[Any]) -> bool:
    return bool(items) and all(isinstance(item, dict) and "name" in item for item in items)


def build_node_pod(job: BigModelJob, rank: int) -> dict[str, Any]:
    """Pod `<job>-node-<rank>`: torchrun agent of one node, restartPolicy Never (the operator
    owns restarts), with the pod template overlay merged in."""
    spec, name = job.spec, job.metadata["name"]
    overlay = spec.pod_template
    group_labels, group_annotations = _group_metadata(job)
    labels = {
        **overlay.metadata.labels,
        **job_labels(job, "node"),
        **group_labels,
        LABEL_RANK: str(rank),
        LABEL_ROLE: "master" if rank == 0 else "worker",
    }
    metadata = _metadata(job, node_pod_name(name, rank), labels)
    metadata["annotations"] |= {
        **overlay.metadata.annotations,
        **group_annotations,
        GENERATION_ANNOTATION: str(job.metadata.get("generation", 1)),
    }
    shm = {"name": SHM_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": spec.shm_size}}
    pod_spec: dict[str, Any] = {
        "hostname": node_pod_name(name, rank),
        "subdomain": service_name(name),
        "restartPolicy": "Never",
        **_scheduling(job),
        "containers": [_main_container(job, rank)],
        "volumes": [*_dump(spec.volumes), shm],
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": merge(pod_spec, overlay.spec),
    }


def owned_env(name: str) -> bool:
    """Whether the operator sets the variable `name` (users may not)."""
    return name in OWNED_ENV or name.startswith(RESERVED_ENV_PREFIX)


def spec_errors(job: BigModelJob) -> list[str]:
    """Problems the schema cannot see: settings the operator owns, each naming its field."""
    spec = job.spec
    errors = [
        f"spec.env[{i}].name: {e.name} is set by the operator"
        for i, e in enumerate(spec.env)
        if owned_env(e.name)
    ]
    errors += [
        f"spec.volumes[{i}].name: {SHM_VOLUME} is the operator's /dev/shm volume"
        for i, v in enumerate(spec.volumes)
        if v.name == SHM_VOLUME
    ]
    errors += [
        f"spec.volumeMounts[{i}].mountPath: {SHM_PATH} is set by the operator (use shmSize)"
        for i, m in enumerate(spec.volume_mounts)
        if m.mount_path == SHM_PATH
    ]
    overlay = spec.pod_template.spec
    errors += [
        f"spec.podTemplate.spec.{key}: set by the operator"
        for key in _OWNED_POD_FIELDS
        if key in overlay
    ]
    for i, container in enumerate(overlay.get("containers") or ()):
        if not isinstance(container, dict) or container.get("name") != MAIN_CONTAINER:
            continue
        path = f"spec.podTemplate.spec.containers[{i}]"
        errors += [
            f"{path}.{key}: set by the operator (use spec.{key})"
            for key in _OWNED_CONTAINER_FIELDS
            if key in container
        ]
        errors += [
            f"{path}.env[{j}].name: {e.get('name')} is set by the operator"
            for j, e in enumerate(container.get("env") or ())
            if isinstance(e, dict) and owned_env(str(e.get("name")))
        ]
    return errors
