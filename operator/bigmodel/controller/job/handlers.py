"""kopf handlers of BigModelJob (thin): they only keep the caches and queue the key of the
job that changed; the job controller's workers do the rest (`controller`).

- `job_pods`: an index of node pods by the uid of their job; a change queues the job.
- `job_pod_removed`: a node pod gone from the cluster (kopf drops it from the index silently).
- `job_events`: every watch event of a job, cached; a new job, a new generation (a spec
  change) or a deletion queues it. kopf calls event handlers only once every index is
  filled from its first listing, so a job is never reconciled from half-listed caches.

No create/update/delete handler, daemon or timer: kopf adds no finalizer to jobs and writes
no progress or diff-base annotations.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from bigmodel.api import GROUP, JOB_KIND, JOB_PLURAL, VERSION
from bigmodel.controller.context import context, removed
from bigmodel.controller.job.controller import JobController
from bigmodel.controller.job.pods import NodePod, observe_pod
from bigmodel.controller.objects import object_key
from bigmodel.controller.operator_settings import operator_settings
from bigmodel.controller.queuemetrics import default_queue_metrics
from bigmodel.manifests.job import LABEL_JOB
from bigmodel.manifests.pods import MANAGER

NODE_PODS: Mapping[str, Any] = {LABEL_JOB: kopf.PRESENT, "app.kubernetes.io/managed-by": MANAGER}


def jobs(memo: Any) -> JobController:
    """The job controller, from kopf's memo."""
    found: JobController = memo.jobs
    return found


@kopf.on.startup()
async def start_job_controller(memo: Any, **kwargs: Any) -> None:
    """Create the job controller over kopf's pod index, with the job timers
    (`BIGMODEL_RESTART_BACKOFF`, ...) and the workers (`BIGMODEL_WORKERS`, ...)."""
    settings = operator_settings(memo)
    memo.jobs = JobController(
        context(memo), settings.timing, kwargs["job_pods"], default_queue_metrics(),
        settings.workers, settings.telemetry_workers,
    )  # fmt: skip
    context(memo).add(memo.jobs)


def controller_of(body: Mapping[str, Any]) -> tuple[str, str] | None:
    """uid and key of the BigModelJob that controls a pod, or None."""
    meta = body.get("metadata", {})
    for ref in meta.get("ownerReferences") or ():
        if ref.get("controller") and ref.get("kind") == JOB_KIND:
            return str(ref.get("uid")), object_key(meta.get("namespace"), ref.get("name"))
    return None


@kopf.index("pods", labels=NODE_PODS)
async def job_pods(body: kopf.Body, memo: Any, **_: Any) -> dict[str, NodePod] | None:
    """Node pods by the uid of their job; a change queues the job."""
    owner, pod = controller_of(body), observe_pod(body)
    if owner is None or pod is None:
        return None
    jobs(memo).pod_changed(owner[1])
    return {owner[0]: pod}


@kopf.on.event("pods", labels=NODE_PODS, when=removed)
async def job_pod_removed(body: kopf.Body, memo: Any, **_: Any) -> None:
    """A node pod gone from the cluster queues its job, with why the cluster stopped it: a
    watch may bring its deletion before the job has looked at its last state."""
    owner, pod = controller_of(body), observe_pod(body)
    if owner is not None and pod is not None:
        jobs(memo).pod_removed(owner[1], owner[0], pod.member, pod.disruption)


@kopf.on.event(GROUP, VERSION, JOB_PLURAL)
async def job_events(event: Mapping[str, Any], memo: Any, **_: Any) -> None:
    """Cache the job and queue it when it needs a look; the caches are synced by now."""
    context(memo).caches_synced()
    jobs(memo).job_changed(event.get("type"), event["object"])
