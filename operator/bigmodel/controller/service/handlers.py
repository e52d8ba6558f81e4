"""kopf handlers of BigModelService (thin): indexes of its replica pods and of the children
it applied, and the services' own watch events, each queueing the service that changed for
the service controller's workers (`controller`). kopf calls event handlers only once every
index is filled from its first listing. No create/update/delete handler, daemon or timer:
kopf adds no finalizer to services and writes no progress or diff-base annotations."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from bigmodel.api import GROUP, SERVICE_PLURAL, VERSION
from bigmodel.controller.context import context, removed
from bigmodel.controller.objects import object_key
from bigmodel.controller.operator_settings import operator_settings
from bigmodel.controller.queuemetrics import default_queue_metrics
from bigmodel.controller.service.controller import Indexes, ServiceController
from bigmodel.controller.service.replicas import (
    ChildView,
    ReplicaPod,
    observe_child,
    observe_replica,
)
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
async def start_service_controller(memo: Any, **kwargs: Any) -> None:
    """Create the service controller over kopf's indexes of its children, with the
    operator's settings: the runtimes' default images, the workers and the resync."""
    indexes = Indexes(
        kwargs["service_deployments"], kwargs["service_fronts"], kwargs["service_pods"]
    )
    settings = operator_settings(memo)
    memo.services = ServiceController(
        context(memo), settings.images, indexes, default_queue_metrics(), settings.workers,
        settings.service_resync,
    )  # fmt: skip
    context(memo).add(memo.services)


def _owner(body: Mapping[str, Any]) -> str:
    meta = body.get("metadata") or {}
    return object_key(meta.get("namespace"), (meta.get("labels") or {}).get(LABEL_SERVICE))


@kopf.index("pods", labels=CHILDREN)
async def service_pods(body: kopf.Body, memo: Any, **_: Any) -> dict[str, ReplicaPod]:
    """Replica pods by `namespace/service`; a change queues the service."""
    key = _owner(body)
    services(memo).child_changed(key)
    return {key: observe_replica(body)}


@kopf.index("apps", "v1", "deployments", labels=CHILDREN)
async def service_deployments(body: kopf.Body, memo: Any, **_: Any) -> dict[str, ChildView]:
    """The Deployment of each service, by `namespace/service`."""
    key = _owner(body)
    services(memo).child_changed(key)
    return {key: observe_child(body)}


@kopf.index("", "v1", "services", labels=CHILDREN)
async def service_fronts(body: kopf.Body, memo: Any, **_: Any) -> dict[str, ChildView]:
    """The ClusterIP Service of each service, by `namespace/service`."""
    key = _owner(body)
    services(memo).child_changed(key)
    return {key: observe_child(body)}


@kopf.on.event("pods", labels=CHILDREN, when=removed)
@kopf.on.event("apps", "v1", "deployments", labels=CHILDREN, when=removed)
@kopf.on.event("", "v1", "services", labels=CHILDREN, when=removed)
async def service_child_removed(body: kopf.Body, memo: Any, **_: Any) -> None:
    """A child gone from the cluster queues its service (kopf drops it from the indexes
    above without calling them)."""
    services(memo).child_changed(_owner(body))


@kopf.on.event(GROUP, VERSION, SERVICE_PLURAL)
async def service_events(event: Mapping[str, Any], memo: Any, **_: Any) -> None:
    """Cache the service and queue it (its spec, a scale, its status); the caches are
    synced by now."""
    context(memo).caches_synced()
    services(memo).service_changed(event.get("type"), event["object"])
