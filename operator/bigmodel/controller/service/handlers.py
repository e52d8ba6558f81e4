"""kopf handlers of BigModelService (thin): the watch events of its replica pods, of the
children it applied and of the services themselves, each cached and queueing the service
that changed for the service controller's workers (`controller`). Every resource is LISTed
once at start into the same caches (`synced.sync`); no object waits for any other to be
queued. Each handler also hands kopf's handler context to the workers
(`OperatorContext.handling`: kopf posts events only from it). No create/update/delete
handler, daemon or timer: kopf adds no finalizer to services and writes no progress or
diff-base annotations."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from bigmodel.api import API_VERSION, GROUP, SERVICE_PLURAL, VERSION
from bigmodel.controller.caches import Listing
from bigmodel.controller.context import context
from bigmodel.controller.operator_settings import operator_settings
from bigmodel.controller.queuemetrics import default_queue_metrics
from bigmodel.controller.service.controller import ServiceController
from bigmodel.manifests.pods import MANAGER
from bigmodel.manifests.service import LABEL_SERVICE

CHILDREN: Mapping[str, Any] = {
    LABEL_SERVICE: kopf.PRESENT,
    "app.kubernetes.io/managed-by": MANAGER,
}


def services(memo: Any) -> ServiceController:
    """The service controller, from kopf's memo."""
    found: ServiceController = memo.services
    return found


@kopf.on.startup()
async def start_service_controller(memo: Any, **_: Any) -> None:
    """Create the service controller with the operator's settings (the runtimes' default
    images, the workers and the resync); its caches are filled at start by `synced.sync`."""
    settings = operator_settings(memo)
    controller = ServiceController(
        context(memo), settings.images, default_queue_metrics(), settings.workers,
        settings.service_resync,
    )  # fmt: skip
    memo.services = controller
    context(memo).add(controller)
    context(memo).watch(
        Listing(API_VERSION, SERVICE_PLURAL, {}, controller.service_changed),
        Listing("v1", "pods", CHILDREN, controller.pod_event),
        Listing("apps/v1", "deployments", CHILDREN, controller.deployment_event),
        Listing("v1", "services", CHILDREN, controller.front_event),
    )


@kopf.on.event("pods", labels=CHILDREN)
async def service_pod_events(event: Mapping[str, Any], memo: Any, **_: Any) -> None:
    """Cache the replica pod under its service and queue the service."""
    context(memo).handling()
    services(memo).pod_event(event.get("type"), event["object"])


@kopf.on.event("apps", "v1", "deployments", labels=CHILDREN)
async def service_deployment_events(event: Mapping[str, Any], memo: Any, **_: Any) -> None:
    """Cache the service's Deployment and queue the service."""
    context(memo).handling()
    services(memo).deployment_event(event.get("type"), event["object"])


@kopf.on.event("", "v1", "services", labels=CHILDREN)
async def service_front_events(event: Mapping[str, Any], memo: Any, **_: Any) -> None:
    """Cache the service's ClusterIP Service and queue the service."""
    context(memo).handling()
    services(memo).front_event(event.get("type"), event["object"])


@kopf.on.event(GROUP, VERSION, SERVICE_PLURAL)
async def service_events(event: Mapping[str, Any], memo: Any, **_: Any) -> None:
    """Cache the service and queue it (its spec, a scale, its status)."""
    context(memo).handling()
    services(memo).service_changed(event.get("type"), event["object"])
