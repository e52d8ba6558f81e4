"""kopf handlers of BigModelJob (thin): they only keep the caches and queue the key of the
job that changed; the job controller's workers do the rest (`controller`).

- `job_events`: every watch event of a job, cached; a new job, a new generation (a spec
  change) or a deletion queues it.
- Node pods are watched by an informer of the operator's own (`informer`, with a
  server-side label selector), not kopf: every event of a node pod is cached by the uid of
  its job, and a change or a removal queues the job.

Jobs are LISTed once at start into their cache (`synced.sync`), and the caches count as
synced once the pods' informer has listed too, so a job is never reconciled from
half-listed caches, and no object waits for any other to be queued.
Each handler also hands kopf's handler context to the workers (`OperatorContext.handling`:
kopf posts events only from it). No create/update/delete handler, daemon or timer: kopf
adds no finalizer to jobs and writes no progress or diff-base annotations.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from bigmodel.api import API_VERSION, GROUP, JOB_PLURAL, VERSION
from bigmodel.controller.caches import Listing
from bigmodel.controller.context import context
from bigmodel.controller.job.controller import JobController
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
async def start_job_controller(memo: Any, **_: Any) -> None:
    """Create the job controller with the operator's settings (the job timers
    `BIGMODEL_RESTART_BACKOFF`, ..., the workers `BIGMODEL_WORKERS`, ...); its caches are
    filled at start by `synced.sync`."""
    settings = operator_settings(memo)
    controller = JobController(
        context(memo), settings.timing, default_queue_metrics(), settings.workers,
        settings.telemetry_workers,
    )  # fmt: skip
    memo.jobs = controller
    context(memo).add(controller)
    context(memo).watch(Listing(API_VERSION, JOB_PLURAL, {}, controller.job_changed))
    context(memo).inform(Listing("v1", "pods", NODE_PODS, controller.pod_event))


@kopf.on.event(GROUP, VERSION, JOB_PLURAL)
async def job_events(event: Mapping[str, Any], memo: Any, **_: Any) -> None:
    """Cache the job and queue it when it needs a look."""
    context(memo).handling()
    jobs(memo).job_changed(event.get("type"), event["object"])
