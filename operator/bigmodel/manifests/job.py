"""Pure builders of a BigModelJob's children: the Services, the pods and the PodGroup.

Every function takes the parsed job (whose `metadata` carries name, namespace, uid, labels,
annotations and generation) and returns plain manifests; the controller adds the owner
reference and creates them. What differs by framework (roles, program, environment, extra
Services) comes from the job's launch contract (`manifests.frameworks`).
"""

from __future__ import annotations

from typing import Any

from bigmodel.api.job import BigModelJob, GangScheduler
from bigmodel.manifests.frameworks import Contract, Member, RoleService, contract_of
from bigmodel.manifests.names import service_name
from bigmodel.manifests.pods import (
    MANAGER,
    avoiding_machines,
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

LABEL_JOB = "bigmodel.dev/job"
LABEL_RANK = "bigmodel.dev/node-rank"
"""The pod's index within its role (for pytorch, its node rank)."""
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
"""Variables the operator sets besides the framework's own (all refused in user env)."""

_OWNED_POD_FIELDS: dict[str, str | None] = dict.fromkeys(("restartPolicy", "hostname", "subdomain"))
_OWNED_CONTAINER_FIELDS = {key: f"spec.{key}" for key in ("command", "args", "image")}


def job_labels(job: BigModelJob, component: str) -> dict[str, str]:
    """The recommended labels plus `bigmodel.dev/job` of every child of the job."""
    name = job.metadata["name"]
    return {**recommended_labels("bigmodel-job", name, component), LABEL_JOB: name}


def pod_selector(job: BigModelJob) -> dict[str, str]:
    """Labels that select exactly the pods of the job."""
    return {LABEL_JOB: job.metadata["name"], "app.kubernetes.io/managed-by": MANAGER}


def build_service(job: BigModelJob) -> dict[str, Any]:
    """The headless Service `<job>` that gives the pods their DNS names; it publishes pods
    before they are ready, since the rendezvous happens before any readiness."""
    spec = job.spec
    port_name = contract_of(spec.framework).port_name
    ports = [{"name": port_name, "port": spec.master_port, "protocol": "TCP"}]
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


def build_role_service(job: BigModelJob, wanted: RoleService) -> dict[str, Any]:
    """The Service `<job>-<role>` in front of the pods of one role, its ports named."""
    name = f"{job.metadata['name']}-{wanted.role}"
    ports = [{"name": n, "port": p, "protocol": "TCP"} for n, p in wanted.ports.items()]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": child_metadata(job.metadata, name, job_labels(job, wanted.role)),
        "spec": {"selector": {**pod_selector(job), LABEL_ROLE: wanted.role}, "ports": ports},
    }


def build_services(job: BigModelJob) -> list[dict[str, Any]]:
    """The headless Service and those the job's framework needs besides."""
    wanted = contract_of(job.spec.framework).services(job)
    return [build_service(job), *(build_role_service(job, w) for w in wanted)]


def pod_count(job: BigModelJob) -> int:
    """Pods of the job, every role counted."""
    return len(contract_of(job.spec.framework).members(job.spec))


def min_members(job: BigModelJob) -> int:
    """Pods the gang scheduler must place together."""
    spec = job.spec
    if spec.gang_scheduling and spec.gang_scheduling.min_available:
        return spec.gang_scheduling.min_available
    return spec.elastic.min_nodes if spec.elastic else pod_count(job)


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


def _metrics_env(job: BigModelJob) -> list[dict[str, Any]]:
    """Where the step timer serves /metrics: the pod's own IP (pods may share a host)."""
    if not job.spec.metrics.enabled:
        return []
    pod_ip = {"fieldRef": {"fieldPath": "status.podIP"}}
    return [
        env("BIGMODEL_METRICS_PORT", job.spec.metrics.port),
        {"name": "BIGMODEL_METRICS_HOST", "valueFrom": pod_ip},
    ]


def _main_container(job: BigModelJob, contract: Contract, member: Member) -> dict[str, Any]:
    spec = job.spec
    launch = contract.launch(job, member)
    ports = [{"name": contract.port_name, "containerPort": spec.master_port}]
    if spec.metrics.enabled:
        ports.append({"name": METRICS_PORT_NAME, "containerPort": spec.metrics.port})
    variables = [*launch.env, env("PYTHONUNBUFFERED", "1"), *_metrics_env(job), *dump(spec.env)]
    container: dict[str, Any] = {
        "name": MAIN_CONTAINER,
        "image": spec.image,
        "command": launch.command,
        "args": launch.args,
        "env": variables,
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
        annotations[KUEUE_TOTAL] = str(pod_count(job))
    return labels, annotations


def avoided_machines(job: BigModelJob) -> list[str]:
    """The nodes the job's pods never go to again: those its stragglers were moved off."""
    return [r.machine for r in job.status.straggler_replacements]


def build_pod(job: BigModelJob, member: Member) -> dict[str, Any]:
    """The pod of `member` (e.g. `<job>-node-<rank>`, `<job>-ps-<i>`), restartPolicy Never
    (the operator owns restarts), with the pod template overlay merged in, and a required
    node anti-affinity to the machines its stragglers were moved off (`avoided_machines`)."""
    spec, name = job.spec, job.metadata["name"]
    contract = contract_of(spec.framework)
    pod_name = contract.pod_name(job, member)
    overlay = spec.pod_template
    group_labels, group_annotations = _group_metadata(job)
    labels = {
        **overlay.metadata.labels,
        **job_labels(job, "node"),
        **group_labels,
        LABEL_RANK: str(member.index),
        LABEL_ROLE: member.role,
    }
    metadata = child_metadata(job.metadata, pod_name, labels)
    metadata["annotations"] |= {
        **overlay.metadata.annotations,
        **group_annotations,
        GENERATION_ANNOTATION: str(job.metadata.get("generation", 1)),
    }
    pod_spec: dict[str, Any] = {
        "hostname": pod_name,
        "subdomain": service_name(name),
        "restartPolicy": "Never",
        **_scheduling(job),
        "containers": [_main_container(job, contract, member)],
        "volumes": [*dump(spec.volumes), shm_volume(spec)],
    }
    merged = merge(pod_spec, overlay.spec)
    avoided = avoided_machines(job)
    if avoided:
        merged["affinity"] = avoiding_machines(merged.get("affinity"), avoided, required=True)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": merged}


def spec_errors(job: BigModelJob) -> list[str]:
    """Problems the schema cannot see: settings the operator owns, each naming its field."""
    contract = contract_of(job.spec.framework)

    def owned_env(name: str) -> bool:
        return name in OWNED_ENV or contract.owns_env(name)

    return owned_settings_errors(
        job.spec, MAIN_CONTAINER, owned_env, _OWNED_POD_FIELDS, _OWNED_CONTAINER_FIELDS
    )
