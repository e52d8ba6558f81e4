"""Operator-wide kopf settings, applied once at startup."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterable
from typing import Any

import kopf

from bigmodel.controller.k8s import kopf_session, load_client_config
from bigmodel.controller.operator_settings import operator_settings

REPORTING_COMPONENT = "bigmodel-operator"


WATCHED_RESOURCES = 2
"""Resources kopf watches: both kinds (their children are watched by the operator's own
informers, `informer`, with a session of their own)."""


@kopf.on.login()
async def login(memo: Any, **_: Any) -> kopf.AiohttpSession:
    """Log kopf in exactly as our own client (KUBECONFIG first when set, then in-cluster),
    with room for one watch per resource and namespace besides its requests."""
    namespaces = len(operator_settings(memo).namespaces) or 1
    return kopf_session(load_client_config(), WATCHED_RESOURCES * namespaces)


class NoDiffBase(kopf.DiffBaseStorage):
    """No diff base. kopf builds one for every watch event of every object (a deep copy of
    its body without metadata and status) and reads the stored one, to compute the diff
    that only create/update handlers and daemons use; this operator has only event handlers,
    so that was 15% of its CPU in a burst, for nothing (`benchmarks/README.md`)."""

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None
    ) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


class QuietSuccess(logging.Filter):
    """Drops kopf's "Handler '...' succeeded." lines: the handlers are watch-event handlers
    that only cache and queue, so it would be one line per watch event of every object."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith("Handler '") and message.endswith("' succeeded."))


@kopf.on.startup()
async def tune_kopf(settings: kopf.OperatorSettings, **_: Any) -> None:
    """Set kopf's knobs for a production operator; each line says why."""
    # The handlers only cache and queue (event handlers: no create/update/delete handler,
    # daemon or timer), so kopf writes no finalizer, progress or diff base; what earlier
    # versions left is removed by the reconciles (`legacy`). Its diff base, still built for
    # every event, is turned off; its progress storage is only read to strip its own
    # annotations from that (now empty) diff base, which costs nothing.
    settings.persistence.diffbase_storage = NoDiffBase()
    # kopf's peering would only add API traffic and a CRD the chart would have to ship.
    settings.peering.standalone = True
    # Watches that silently stall are the classic operator failure: reconnect regularly.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 30
    # A slow or unreachable API server must not hang a handler forever.
    settings.networking.request_timeout = 60
    settings.networking.connect_timeout = 10
    # One log line per watch event says nothing: failures are still logged.
    logging.getLogger("kopf.objects").addFilter(QuietSuccess())
    # Events are for humans: keep kopf's per-handler chatter (debug/info) out of them.
    settings.posting.level = logging.WARNING
    # Our events say who posted them (`kubectl describe`'s From column): the operator, by its
    # pod (the chart sets POD_NAME), not "kopf".
    settings.posting.reporting_component = REPORTING_COMPONENT
    settings.posting.reporting_instance = os.environ.get("POD_NAME") or socket.gethostname()
    settings.posting.event_name_prefix = f"{REPORTING_COMPONENT}-"
    # A failure in kopf's own processing of an event: retry with a bounded back-off.
    settings.batching.error_delays = (1, 2, 5, 10, 30, 60)
