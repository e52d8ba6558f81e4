"""Start the operator: kopf with our handlers, a health endpoint and a metrics endpoint."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import kopf
import prometheus_client

from bigmodel.controller.health import serving
from bigmodel.controller.operator_settings import OperatorSettings
from bigmodel.telemetry.export import default_metrics

logger = logging.getLogger("bigmodel")


def run_operator(namespaces: Sequence[str], health_port: int, metrics_port: int) -> int:
    """Run until SIGINT/SIGTERM against KUBECONFIG or the in-cluster configuration."""
    # Importing the handler modules registers them with kopf's default registry.
    from bigmodel.controller import context, kopf_settings  # noqa: F401
    from bigmodel.controller.job import handlers as job_handlers  # noqa: F401
    from bigmodel.controller.service import handlers as service_handlers  # noqa: F401
    from bigmodel.controller.synced import SYNC_RETRY_SECONDS, sync

    # Registered after every kind's handlers: kopf runs the startup handlers in the order
    # they were registered, and this one lists what each kind's `start` asked for.
    kopf.on.startup(id="sync_caches", backoff=SYNC_RETRY_SECONDS)(sync)

    settings = OperatorSettings.read(os.environ, namespaces, health_port, metrics_port)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # Registered before serving, so the first scrape already lists every family (T, S, T_i
    # of running jobs, reconciles, restarts, ...) that the handlers fill in.
    default_metrics()
    prometheus_client.start_http_server(metrics_port)
    scope = f"namespaces {', '.join(namespaces)}" if namespaces else "all namespaces"
    logger.info(
        "starting: %s, /healthz and /readyz on :%d, /metrics on :%d",
        scope,
        health_port,
        metrics_port,
    )
    health = settings.new_health()
    with serving(health, health_port):
        kopf.run(
            standalone=True,
            clusterwide=not namespaces,
            namespaces=list(namespaces),
            memo=kopf.Memo(health=health, settings=settings),
        )
    return 0
