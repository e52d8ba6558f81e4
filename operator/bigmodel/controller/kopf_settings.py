"""Operator-wide kopf settings, applied once at startup."""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

import kopf

from bigmodel.api import GROUP
from bigmodel.controller.k8s import kopf_session, load_client_config

REPORTING_COMPONENT = "bigmodel-operator"


WATCHED_RESOURCES = 5
"""Resources kopf watches: both kinds, their pods, Deployments and Services."""


@kopf.on.login()
async def login(memo: Any, **_: Any) -> kopf.AiohttpSession:
    """Log kopf in exactly as our own client (KUBECONFIG first when set, then in-cluster),
    with room for one watch per resource and namespace besides its requests."""
    namespaces = len(getattr(memo, "namespaces", None) or ()) or 1
    return kopf_session(load_client_config(), WATCHED_RESOURCES * namespaces)


@kopf.on.startup()
async def tune_kopf(settings: kopf.OperatorSettings, **_: Any) -> None:
    """Set kopf's knobs for a production operator; each line says why."""
    # Our own prefixes, so kopf's bookkeeping never collides with another kopf operator's.
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    # One replica with `strategy: Recreate` is the supported topology; peering would only
    # add API traffic and a CRD the chart would have to ship.
    settings.peering.standalone = True
    # Watches that silently stall are the classic operator failure: reconnect regularly.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 30
    # A slow or unreachable API server must not hang a handler forever.
    settings.networking.request_timeout = 60
    settings.networking.connect_timeout = 10
    # Events are for humans: keep kopf's per-handler chatter (debug/info) out of them.
    settings.posting.level = logging.WARNING
    # Our events say who posted them (`kubectl describe`'s From column): the operator, by its
    # pod (the chart sets POD_NAME), not "kopf".
    settings.posting.reporting_component = REPORTING_COMPONENT
    settings.posting.reporting_instance = os.environ.get("POD_NAME") or socket.gethostname()
    settings.posting.event_name_prefix = f"{REPORTING_COMPONENT}-"
    # Retry failed handlers with a bounded back-off instead of a tight loop.
    settings.execution.max_workers = 20
    settings.batching.error_delays = (1, 2, 5, 10, 30, 60)
