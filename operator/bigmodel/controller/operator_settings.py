"""Everything the operator reads at start, read once: `bigmodel run`'s flags and the
`BIGMODEL_*` environment (docs/configuration.md has the table). `run_operator` reads it and
puts it in kopf's memo; the startup handlers pass each part down to what uses it. Nothing
else reads a `BIGMODEL_*` variable (only the standard `KUBECONFIG` and `POD_NAME` are read
where they are used)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bigmodel.controller.election import ElectionSettings
from bigmodel.controller.health import (
    API_GRACE_ENV,
    API_GRACE_SECONDS,
    WATCH_STALL_ENV,
    WATCH_STALL_SECONDS,
    Health,
    WatchLag,
)
from bigmodel.controller.job.timing import Timing
from bigmodel.controller.workers import (
    TELEMETRY_WORKERS,
    TELEMETRY_WORKERS_ENV,
    WORKERS,
    WORKERS_ENV,
)
from bigmodel.manifests.service import RuntimeImages
from bigmodel.settings import count_from_env, seconds_from_env
from bigmodel.telemetry.observe import INTERVAL_ENV, INTERVAL_SECONDS

IMAGE_ENV = {"torch": "BIGMODEL_TORCH_IMAGE", "vllm": "BIGMODEL_VLLM_IMAGE"}
"""The runtimes' default images (the chart sets them from `runtimeImages`)."""
SERVICE_RESYNC_ENV = "BIGMODEL_SERVICE_RESYNC"
SERVICE_RESYNC_SECONDS = 60.0
"""Longest pause between two looks at a service: its children change often (rollouts,
autoscaling), so its safety net is shorter than a job's `BIGMODEL_RESYNC` (300)."""


@dataclass(frozen=True)
class OperatorSettings:
    """The operator's settings: what it watches and serves, its timers and workers, the
    telemetry interval, the runtimes' images, the health thresholds and leader election."""

    namespaces: tuple[str, ...] = ()
    """Namespaces watched (`--namespace`, repeatable); empty: the whole cluster."""
    health_port: int = 8081
    metrics_port: int = 8080
    timing: Timing = field(default_factory=Timing)
    service_resync: float = SERVICE_RESYNC_SECONDS
    workers: int = WORKERS
    telemetry_workers: int = TELEMETRY_WORKERS
    telemetry_interval: float = INTERVAL_SECONDS
    images: RuntimeImages = field(default_factory=RuntimeImages)
    api_grace: float = API_GRACE_SECONDS
    watch_stall: float = WATCH_STALL_SECONDS
    election: ElectionSettings = field(default_factory=ElectionSettings)

    @classmethod
    def read(
        cls,
        env: Mapping[str, str],
        namespaces: Sequence[str] = (),
        health_port: int = 8081,
        metrics_port: int = 8080,
    ) -> OperatorSettings:
        """The flags' values and the environment's; a bad value raises ValueError naming
        the variable and what it allows."""
        defaults = RuntimeImages()
        return cls(
            namespaces=tuple(namespaces),
            health_port=health_port,
            metrics_port=metrics_port,
            timing=Timing.from_env(env),
            service_resync=seconds_from_env(env, SERVICE_RESYNC_ENV, SERVICE_RESYNC_SECONDS),
            workers=count_from_env(env, WORKERS_ENV, WORKERS),
            telemetry_workers=count_from_env(env, TELEMETRY_WORKERS_ENV, TELEMETRY_WORKERS),
            telemetry_interval=seconds_from_env(
                env, INTERVAL_ENV, INTERVAL_SECONDS, allow_zero=False
            ),
            images=RuntimeImages(
                torch=env.get(IMAGE_ENV["torch"]) or defaults.torch,
                vllm=env.get(IMAGE_ENV["vllm"]) or defaults.vllm,
            ),
            api_grace=seconds_from_env(env, API_GRACE_ENV, API_GRACE_SECONDS),
            watch_stall=seconds_from_env(
                env, WATCH_STALL_ENV, WATCH_STALL_SECONDS, allow_zero=False
            ),
            election=ElectionSettings.from_env(env, namespaces),
        )

    def new_health(self) -> Health:
        """The operator's health state, with these thresholds."""
        return Health(watches=WatchLag(stale_after=self.watch_stall), api_grace=self.api_grace)


def operator_settings(memo: Any) -> OperatorSettings:
    """The settings `run_operator` read, from kopf's memo."""
    found: OperatorSettings = memo.settings
    return found
