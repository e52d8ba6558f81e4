"""kopf handlers of BigModelService (thin): the watch events of the services, each cached and
queueing the service that changed for the service controller's workers (`controller`). Its
replica pods and the children it applied (Deployment, Service) are watched by informers of
the operator's own (`informer`, with server-side label selectors), not kopf, into the same
caches, each event queueing its service. Every resource is LISTed once at start
(`synced.sync`); no object waits for any other to be queued. The handler also hands kopf's
handler context to the workers (`OperatorContext.handling`: kopf posts events only from
it). No create/update/delete handler, daemon or timer: kopf adds no finalizer to services
and writes no progress or diff-base annotations."""

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
    context(memo).watch(Listing(API_VERSION, SERVICE_PLURAL, {}, controller.service_changed))
    context(memo).inform(
        Listing("v1", "pods", CHILDREN, controller.pod_event),
        Listing("apps/v1", "deployments", CHILDREN, controller.deployment_event),
        Listing("v1", "services", CHILDREN, controller.front_event),
    )


@kopf.on.event(GROUP, VERSION, SERVICE_PLURAL)
async def service_events(event: Mapping[str, Any], memo: Any, **_: Any) -> None:
    """Cache the service and queue it (its spec, a scale, its status)."""
    context(memo).handling()
    services(memo).service_changed(event.get("type"), event["object"])
