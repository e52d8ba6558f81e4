"""The operator's own Prometheus metrics: T_i, T and S of live resources, and its health.

Per resource (labels `namespace`, `kind`, `name`; per node also `node`), only while the
resource is live: `forget()` drops every series of a finished or deleted one, and a node
that did not answer this round has no `bigmodel_node_*` series (absent, never zero).
Operator health: reconciles, errors and their duration by `kind`, resources by `namespace`
and `phase`, restarts and failures by `namespace`, scrape failures by `reason`, API errors
by `method` and `code`: bounded label values.

Nothing is registered at import time: `default_metrics()` registers the instance used by the
controller in `prometheus_client.REGISTRY` on first use (the registry main.py's
`start_http_server` serves); tests build their own `OperatorMetrics(CollectorRegistry())`.
When Prometheus scrapes the operator, keep these labels: `honor_labels: true`.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter as Tally
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from bigmodel.api import JOB_KIND, SERVICE_KIND
from bigmodel.api.job import JobPhase
from bigmodel.api.service import ServicePhase
from bigmodel.telemetry.readings import MissingReason
from bigmodel.telemetry.serving import TokenRound

PHASES: Mapping[str, tuple[str, tuple[str, ...]]] = MappingProxyType(
    {
        JOB_KIND: ("bigmodel_jobs", tuple(JobPhase)),
        SERVICE_KIND: ("bigmodel_services", tuple(ServicePhase)),
    }
)
"""Per kind: the gauge counting its resources by phase, and the phases it always shows."""

RESOURCE_LABELS = ("namespace", "kind", "name")
NODE_LABELS = (*RESOURCE_LABELS, "node")
RECONCILE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
ROUND_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


@dataclass(frozen=True)
class ResourceTelemetry:
    """One resource's latest round, as exported: T_i and r_i of the nodes that answered."""

    namespace: str
    kind: str
    name: str
    task_seconds: Mapping[str, float] = field(default_factory=dict)  # node -> T_i
    relative_speed: Mapping[str, float] = field(default_factory=dict)  # node -> r_i
    total: float | None = None  # T
    quality: float | None = None  # S
    stragglers: int = 0
    tokens: TokenRound | None = None  # an LLM service's TTFT and TPOT per replica
    causes: Mapping[str, str] = field(default_factory=dict)  # straggler node -> its cause

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.namespace, self.kind, self.name)


@dataclass(frozen=True)
class ServiceScale:
    """A service's replicas and load as the controller last saw them."""

    namespace: str
    name: str
    desired: int
    ready: int
    in_flight: float | None = None  # requests running + waiting per ready replica
    metric: str | None = None  # the autoscaling metric, when autoscaled
    value: float | None = None  # its latest value
    target: float | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.namespace, SERVICE_KIND, self.name)


class _TelemetryCollector(Collector):
    """Renders the latest snapshot of every live resource on each scrape. A snapshot is
    replaced whole (one dict assignment), so a scrape never mixes two rounds."""

    def __init__(self) -> None:
        self.resources: dict[tuple[str, str, str], ResourceTelemetry] = {}
        self.phases: dict[tuple[str, str, str], str] = {}
        self.scales: dict[tuple[str, str, str], ServiceScale] = {}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        snapshots = list(self.resources.values())
        phases = list(self.phases.items())
        node_seconds = GaugeMetricFamily(
            "bigmodel_node_task_seconds",
            "T_i: seconds of the node's (replica's) latest unit of work, as collected.",
            labels=NODE_LABELS,
        )
        node_speed = GaugeMetricFamily(
            "bigmodel_node_relative_speed",
            "r_i = min_j T_j / T_i: the node's speed relative to the fastest node (1 = fastest).",
            labels=NODE_LABELS,
        )
        total = GaugeMetricFamily(
            "bigmodel_task_seconds",
            "T = sum of T_i over the answering nodes.",
            labels=RESOURCE_LABELS,
        )
        quality = GaugeMetricFamily(
            "bigmodel_service_quality",
            "S = (1/n) sum of 1/T_i, in tasks per second.",
            labels=RESOURCE_LABELS,
        )
        nodes = GaugeMetricFamily(
            "bigmodel_nodes",
            "n: nodes (replicas) that reported a valid T_i.",
            labels=RESOURCE_LABELS,
        )
        stragglers = GaugeMetricFamily(
            "bigmodel_stragglers", "Nodes (replicas) flagged as stragglers.", labels=RESOURCE_LABELS
        )
        causes = GaugeMetricFamily(
            "bigmodel_node_straggler_cause",
            "1 for each current straggler, labelled with the cause decided for it.",
            labels=(*NODE_LABELS, "cause"),
        )
        for snap in snapshots:
            labels = list(snap.key)
            for node, cause in snap.causes.items():
                causes.add_metric([*labels, node, cause], 1.0)
            for node, seconds in snap.task_seconds.items():
                node_seconds.add_metric([*labels, node], seconds)
            for node, speed in snap.relative_speed.items():
                node_speed.add_metric([*labels, node], speed)
            if snap.total is not None:
                total.add_metric(labels, snap.total)
            if snap.quality is not None:
                quality.add_metric(labels, snap.quality)
            nodes.add_metric(labels, len(snap.task_seconds))
            stragglers.add_metric(labels, snap.stragglers)
        yield from (node_seconds, node_speed, total, quality, nodes, stragglers, causes)
        yield from self._tokens(snapshots)
        yield from self._scales(list(self.scales.values()))
        for kind, (name, known) in PHASES.items():
            counts = Tally((ns, phase) for (ns, k, _), phase in phases if k == kind)
            family = GaugeMetricFamily(
                name, f"{kind} resources by namespace and phase.", labels=["namespace", "phase"]
            )
            for namespace in sorted({ns for ns, _ in counts}):
                seen = {phase for ns, phase in counts if ns == namespace}
                for phase in (*known, *sorted(seen - set(known))):
                    family.add_metric([namespace, phase], counts.get((namespace, phase), 0))
            yield family

    @staticmethod
    def _tokens(snapshots: list[ResourceTelemetry]) -> Iterator[GaugeMetricFamily]:
        """TTFT and TPOT of LLM services at a percentile (label `quantile`, e.g. 0.9): per
        replica over the latest interval, and their mean over the replicas."""
        families = {
            what: (
                GaugeMetricFamily(
                    f"bigmodel_node_{what.replace(' ', '_')}_seconds",
                    f"A replica's {what} at a percentile, over the latest telemetry interval.",
                    labels=[*NODE_LABELS, "quantile"],
                ),
                GaugeMetricFamily(
                    f"bigmodel_{what.replace(' ', '_')}_seconds",
                    f"A service's {what} at a percentile: the mean of its replicas' values.",
                    labels=[*RESOURCE_LABELS, "quantile"],
                ),
            )
            for what in ("time to first token", "time per output token")
        }
        for snap in snapshots:
            tokens = snap.tokens
            if tokens is None:
                continue
            quantile = f"{tokens.percentile / 100:g}"
            for what, values, mean in (
                ("time to first token", tokens.ttft, tokens.service_ttft),
                ("time per output token", tokens.tpot, tokens.service_tpot),
            ):
                per_node, service = families[what]
                for node, seconds in values.items():
                    per_node.add_metric([*snap.key, node, quantile], seconds)
                if mean is not None:
                    service.add_metric([*snap.key, quantile], mean)
        for pair in families.values():
            yield from pair

    @staticmethod
    def _scales(scales: list[ServiceScale]) -> Iterator[GaugeMetricFamily]:
        desired = GaugeMetricFamily(
            "bigmodel_service_desired_replicas",
            "Replicas a BigModelService should have now (spec or autoscaler).",
            labels=RESOURCE_LABELS,
        )
        ready = GaugeMetricFamily(
            "bigmodel_service_ready_replicas", "Ready replicas.", labels=RESOURCE_LABELS
        )
        in_flight = GaugeMetricFamily(
            "bigmodel_service_in_flight",
            "Requests running plus waiting per ready replica, as last scraped.",
            labels=RESOURCE_LABELS,
        )
        value = GaugeMetricFamily(
            "bigmodel_service_autoscaling_metric",
            "Latest value of the metric the service is autoscaled on.",
            labels=[*RESOURCE_LABELS, "metric"],
        )
        target = GaugeMetricFamily(
            "bigmodel_service_autoscaling_target",
            "Target of the metric the service is autoscaled on.",
            labels=[*RESOURCE_LABELS, "metric"],
        )
        for scale in scales:
            labels = list(scale.key)
            desired.add_metric(labels, scale.desired)
            ready.add_metric(labels, scale.ready)
            if scale.in_flight is not None:
                in_flight.add_metric(labels, scale.in_flight)
            if scale.metric is not None and scale.value is not None:
                value.add_metric([*labels, scale.metric], scale.value)
            if scale.metric is not None and scale.target is not None:
                target.add_metric([*labels, scale.metric], scale.target)
        yield from (desired, ready, in_flight, value, target)


class OperatorMetrics:
    """Every metric the operator exports, registered in one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._telemetry = _TelemetryCollector()
        self._lock = threading.Lock()
        registry.register(self._telemetry)
        self.reconciles = Counter(
            "bigmodel_reconciles_total", "Reconcile passes.", ["kind"], registry=registry
        )
        self.reconcile_errors = Counter(
            "bigmodel_reconcile_errors_total",
            "Reconcile passes that raised an error.",
            ["kind"],
            registry=registry,
        )
        self.reconcile_duration = Histogram(
            "bigmodel_reconcile_duration_seconds",
            "Duration of reconcile passes.",
            ["kind"],
            buckets=RECONCILE_BUCKETS,
            registry=registry,
        )
        self.job_restarts = Counter(
            "bigmodel_job_restarts_total",
            "Gang restarts of BigModelJobs (each counts against backoffLimit).",
            ["namespace"],
            registry=registry,
        )
        self.job_failures = Counter(
            "bigmodel_job_failures_total",
            "BigModelJobs that reached the Failed phase.",
            ["namespace"],
            registry=registry,
        )
        self.scrape_failures = Counter(
            "bigmodel_telemetry_scrape_failures_total",
            "Scrapes of pods that gave no T_i, by reason.",
            ["kind", "reason"],
            registry=registry,
        )
        self.scrapes = Counter(
            "bigmodel_telemetry_scrapes_total", "Scrapes of pods.", ["kind"], registry=registry
        )
        self.api_errors = Counter(
            "bigmodel_api_errors_total",
            "Requests of the operator's API client that failed, by HTTP method and status code "
            "(`connection` or `timeout` when no answer came); kopf's own watches and patches "
            "retry inside kopf and are not counted.",
            ["method", "code"],
            registry=registry,
        )
        self.leader = Gauge(
            "bigmodel_operator_leader",
            "1 while this operator replica is the leader (holds the Lease and reconciles), "
            "0 while it stands by.",
            registry=registry,
        )
        self.round_duration = Histogram(
            "bigmodel_telemetry_round_duration_seconds",
            "Wall time of one collection round of one resource (scrape all, aggregate).",
            ["kind"],
            buckets=ROUND_BUCKETS,
            registry=registry,
        )

    # --- telemetry of live resources ---

    def record(self, snapshot: ResourceTelemetry) -> None:
        """Export a resource's latest round, replacing its previous one whole."""
        with self._lock:
            self._telemetry.resources[snapshot.key] = snapshot

    def forget(self, namespace: str, kind: str, name: str) -> None:
        """Drop every per-resource series of a finished or deleted resource (its phase
        still counts in `bigmodel_jobs` until `set_phase(..., None)`)."""
        with self._lock:
            self._telemetry.resources.pop((namespace, kind, name), None)
            self._telemetry.scales.pop((namespace, kind, name), None)

    def record_scale(self, scale: ServiceScale) -> None:
        """Export a service's replicas and load, replacing the previous values whole."""
        with self._lock:
            self._telemetry.scales[scale.key] = scale

    def record_round(
        self, kind: str, reasons: Iterable[MissingReason | None], seconds: float
    ) -> None:
        """Count one round's scrapes (None: a value came back) and its duration."""
        scrapes = 0
        for reason in reasons:
            scrapes += 1
            if reason is not None:
                self.scrape_failures.labels(kind, reason.value).inc()
        self.scrapes.labels(kind).inc(scrapes)
        self.round_duration.labels(kind).observe(seconds)

    # --- operator health ---

    def set_phase(self, namespace: str, kind: str, name: str, phase: str | None) -> None:
        """The controller's view of a resource's phase (None: deleted, no longer counted).
        Also starts the namespace's job counters at 0, so that their first increase shows
        in `increase()` (a series born at 1 would hide it)."""
        if kind == JOB_KIND and phase is not None:
            self.job_restarts.labels(namespace)
            self.job_failures.labels(namespace)
        with self._lock:
            if phase is None:
                self._telemetry.phases.pop((namespace, kind, name), None)
            else:
                self._telemetry.phases[(namespace, kind, name)] = phase

    @contextlib.contextmanager
    def reconciling(self, kind: str) -> Iterator[None]:
        """Count and time one reconcile pass; an exception counts as an error (re-raised)."""
        began = time.perf_counter()
        self.reconciles.labels(kind).inc()
        try:
            yield
        except BaseException:
            self.reconcile_errors.labels(kind).inc()
            raise
        finally:
            self.reconcile_duration.labels(kind).observe(time.perf_counter() - began)

    def count_api_error(self, method: str, code: str) -> None:
        """One failed request of the operator's API client: `code` is the HTTP status, or
        `connection` / `timeout` (bounded: a handful of methods, the HTTP codes)."""
        self.api_errors.labels(method.upper(), code).inc()

    def count_restart(self, namespace: str) -> None:
        """One gang restart of a job in `namespace`."""
        self.job_restarts.labels(namespace).inc()

    def count_failure(self, namespace: str) -> None:
        """One job of `namespace` reached Failed (count the transition, not every look)."""
        self.job_failures.labels(namespace).inc()


_default: OperatorMetrics | None = None
_default_lock = threading.Lock()


def default_metrics() -> OperatorMetrics:
    """The operator's metrics in `prometheus_client.REGISTRY`, registered on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = OperatorMetrics(prometheus_client.REGISTRY)
        return _default
