"""The printers of workload kinds (Deployment, ReplicaSet, ReplicationController, DaemonSet,
Job), as kube-apiserver's pkg/printers/internalversion has them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kubesandbox.apiserver.tables.columns import AGE, NAME, Cells, PrinterSpec
from kubesandbox.apiserver.tables.format import (
    created,
    field_at,
    format_labels,
    format_selector,
    human_duration,
    name_of,
)
from kubesandbox.objects import Obj, parse_time

_CORE, _APPS, _BATCH = "api.core.v1", "api.apps.v1", "api.batch.v1"


def _template_columns(selector_doc: str) -> list[tuple[Any, ...]]:
    """The wide columns every workload adds: its template's containers and images, and its
    selector."""
    return [
        ("Containers", "Names of each container in the template.", 1),
        ("Images", "Images referenced by each container in the template.", 1),
        ("Selector", selector_doc, 1),
    ]


def _containers(template_spec: Obj | None) -> list[str]:
    containers = (template_spec or {}).get("containers") or []
    return [
        ",".join(c.get("name", "") for c in containers),
        ",".join(c.get("image", "") for c in containers),
    ]


def _deployment_cells(deployment: Obj, now: datetime) -> Cells:
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    return [
        name_of(deployment),
        f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 0)}",
        status.get("updatedReplicas", 0),
        status.get("availableReplicas", 0),
        created(deployment, now),
        *_containers(field_at(spec, "template", "spec")),
        format_selector(spec.get("selector")),
    ]


def _replicated_cells(workload: Obj, now: datetime, selector: str) -> Cells:
    """A ReplicaSet's or a ReplicationController's row (they differ in the selector's form)."""
    spec, status = workload.get("spec") or {}, workload.get("status") or {}
    return [
        name_of(workload),
        spec.get("replicas", 0),
        status.get("replicas", 0),
        status.get("readyReplicas", 0),
        created(workload, now),
        *_containers(field_at(spec, "template", "spec")),
        selector,
    ]


def _replica_set_cells(replica_set: Obj, now: datetime) -> Cells:
    selector = format_selector((replica_set.get("spec") or {}).get("selector"))
    return _replicated_cells(replica_set, now, selector)


def _replication_controller_cells(controller: Obj, now: datetime) -> Cells:
    selector = format_labels((controller.get("spec") or {}).get("selector"))
    return _replicated_cells(controller, now, selector)


def _daemon_set_cells(ds: Obj, now: datetime) -> Cells:
    spec, status = ds.get("spec") or {}, ds.get("status") or {}
    template_spec = field_at(spec, "template", "spec")
    return [
        name_of(ds),
        status.get("desiredNumberScheduled", 0),
        status.get("currentNumberScheduled", 0),
        status.get("numberReady", 0),
        status.get("updatedNumberScheduled", 0),
        status.get("numberAvailable", 0),
        format_labels((template_spec or {}).get("nodeSelector")),
        created(ds, now),
        *_containers(template_spec),
        format_selector(spec.get("selector")),
    ]


def job_state(job: Obj) -> str:
    """The STATUS kubectl shows: Complete, Failed, Terminating, Suspended, FailureTarget,
    SuccessCriteriaMet or Running, in kube's order of precedence."""
    true = {
        c.get("type")
        for c in field_at(job, "status", "conditions") or []
        if c.get("status") == "True"
    }
    if "Complete" in true or "Failed" in true:
        return "Complete" if "Complete" in true else "Failed"
    if field_at(job, "metadata", "deletionTimestamp"):
        return "Terminating"
    found = (s for s in ("Suspended", "FailureTarget", "SuccessCriteriaMet") if s in true)
    return next(found, "Running")


def _job_cells(job: Obj, now: datetime) -> Cells:
    spec, status = job.get("spec") or {}, job.get("status") or {}
    succeeded = status.get("succeeded", 0)
    parallelism = spec.get("parallelism")
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{spec['completions']}"
    elif parallelism is not None and parallelism > 1:
        completions = f"{succeeded}/1 of {parallelism}"
    else:
        completions = f"{succeeded}/1"
    start = parse_time(status.get("startTime"))
    end = parse_time(status.get("completionTime")) or now
    duration = "" if start is None else human_duration((end - start).total_seconds())
    return [
        name_of(job),
        job_state(job),
        completions,
        duration,
        created(job, now),
        *_containers(field_at(spec, "template", "spec")),
        format_selector(spec.get("selector")),
    ]


WORKLOAD_PRINTERS: dict[tuple[str, str], PrinterSpec] = {
    ("apps", "deployments"): (
        [
            NAME,
            ("Ready", "Number of the pod with ready state"),
            ("Up-to-date", f"{_APPS}.DeploymentStatus.updatedReplicas"),
            ("Available", f"{_APPS}.DeploymentStatus.availableReplicas"),
            AGE,
            *_template_columns(f"{_APPS}.DeploymentSpec.selector"),
        ],
        _deployment_cells,
    ),
    ("apps", "replicasets"): (
        [
            NAME,
            ("Desired", f"{_APPS}.ReplicaSetSpec.replicas", 0, "integer"),
            ("Current", f"{_APPS}.ReplicaSetStatus.replicas", 0, "integer"),
            ("Ready", f"{_APPS}.ReplicaSetStatus.readyReplicas", 0, "integer"),
            AGE,
            *_template_columns(f"{_APPS}.DeploymentSpec.selector"),
        ],
        _replica_set_cells,
    ),
    ("", "replicationcontrollers"): (
        [
            NAME,
            ("Desired", f"{_CORE}.ReplicationControllerSpec.replicas", 0, "integer"),
            ("Current", f"{_CORE}.ReplicationControllerStatus.replicas", 0, "integer"),
            ("Ready", f"{_CORE}.ReplicationControllerStatus.readyReplicas", 0, "integer"),
            AGE,
            *_template_columns(f"{_CORE}.ReplicationControllerSpec.selector"),
        ],
        _replication_controller_cells,
    ),
    ("apps", "daemonsets"): (
        [
            NAME,
            ("Desired", f"{_APPS}.DaemonSetStatus.desiredNumberScheduled", 0, "integer"),
            ("Current", f"{_APPS}.DaemonSetStatus.currentNumberScheduled", 0, "integer"),
            ("Ready", f"{_APPS}.DaemonSetStatus.numberReady", 0, "integer"),
            ("Up-to-date", f"{_APPS}.DaemonSetStatus.updatedNumberScheduled", 0, "integer"),
            ("Available", f"{_APPS}.DaemonSetStatus.numberAvailable", 0, "integer"),
            ("Node Selector", f"{_CORE}.PodSpec.nodeSelector"),
            AGE,
            *_template_columns(f"{_APPS}.DaemonSetSpec.selector"),
        ],
        _daemon_set_cells,
    ),
    ("batch", "jobs"): (
        [
            NAME,
            ("Status", "Status of the job."),
            ("Completions", f"{_BATCH}.JobStatus.succeeded"),
            ("Duration", "Time required to complete the job."),
            AGE,
            *_template_columns(f"{_BATCH}.JobSpec.selector"),
        ],
        _job_cells,
    ),
}
