"""Pure builders of a BigModelJob's children: the headless Service, node pods and PodGroup.

Every function takes the parsed job (whose `metadata` carries name, namespace, uid, labels,
annotations and generation) and returns plain manifests; the controller adds the owner
reference and creates them.
"""

from __future__ import annotations

from typing import Any

from bigmodel.api.job import RESERVED_ENV_PREFIX, BigModelJob, GangScheduler
from bigmodel.manifests.names import node_pod_name, service_name
from bigmodel.manifests.pods import (
    MANAGER,
    child_metadata,
    dump,
    env,
    merge,
    owned_settings_errors,
    recommended_labels,
    resources,
    scheduling,
    shm_mount,
    shm_volume,
)

MAIN_CONTAINER = "main"
METRICS_PORT_NAME = "metrics"
RENDEZVOUS_PORT_NAME = "rendezvous"

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

_OWNED_POD_FIELDS: dict[str, str | None] = dict.fromkeys(("restartPolicy", "hostname", "subdomain"))
_OWNED_CONTAINER_FIELDS = {key: f"spec.{key}" for key in ("command", "args", "image")}
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


def job_labels(job: BigModelJob, component: str) -> dict[str, str]:
    """The recommended labels plus `bigmodel.dev/job` of every child of the job."""
    name = job.metadata["name"]
    return {**recommended_labels("bigmodel-job", name, component), LABEL_JOB: name}


def pod_selector(job: BigModelJob) -> dict[str, str]:
    """Labels that select exactly the node pods of the job."""
    return {LABEL_JOB: job.metadata["name"], "app.kubernetes.io/managed-by": MANAGER}


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
        "metadata": child_metadata(job.metadata, name, job_labels(job, "rendezvous")),
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
        "metadata": child_metadata(
            job.metadata, job.metadata["name"], job_labels(job, "pod-group")
        ),
        "spec": spec,
    }


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
    return [env("PET_NNODES", nnodes), *variables, env("PYTHONUNBUFFERED", "1")]


def _metrics_env(job: BigModelJob) -> list[dict[str, Any]]:
    """Where the step timer serves /metrics: the pod's own IP (pods may share a host)."""
    if not job.spec.metrics.enabled:
        return []
    pod_ip = {"fieldRef": {"fieldPath": "status.podIP"}}
    return [
        env("BIGMODEL_METRICS_PORT", job.spec.metrics.port),
        {"name": "BIGMODEL_METRICS_HOST", "valueFrom": pod_ip},
    ]


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
        "env": [*torchrun_env(job, rank), *_metrics_env(job), *dump(spec.env)],
        "envFrom": spec.env_from,
        "resources": resources(spec, spec.gpus_per_node),
        "ports": ports,
        "volumeMounts": [*dump(spec.volume_mounts), shm_mount()],
    }
    if spec.image_pull_policy:
        container["imagePullPolicy"] = spec.image_pull_policy.value
    return {k: v for k, v in container.items() if v != []}


def _scheduling(job: BigModelJob) -> dict[str, Any]:
    """The scheduling fields that are set, with the gang scheduler's name when there is one."""
    fields = scheduling(job.spec)
    gang = job.spec.gang_scheduling
    if gang and not job.spec.scheduler_name:
        fields["schedulerName"] = GANG_SCHEDULER_NAME[gang.scheduler]
    return fields


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
    metadata = child_metadata(job.metadata, node_pod_name(name, rank), labels)
    metadata["annotations"] |= {
        **overlay.metadata.annotations,
        **group_annotations,
        GENERATION_ANNOTATION: str(job.metadata.get("generation", 1)),
    }
    pod_spec: dict[str, Any] = {
        "hostname": node_pod_name(name, rank),
        "subdomain": service_name(name),
        "restartPolicy": "Never",
        **_scheduling(job),
        "containers": [_main_container(job, rank)],
        "volumes": [*dump(spec.volumes), shm_volume(spec)],
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
    return owned_settings_errors(
        job.spec, MAIN_CONTAINER, owned_env, _OWNED_POD_FIELDS, _OWNED_CONTAINER_FIELDS
    )
