"""The work queues' Prometheus metrics, named and shaped as controller-runtime's
(`workqueue_*`, label `name`: the queue, one per kind and telemetry, so bounded), so the
dashboards and alerts people have for Kubernetes controllers read them as they are."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

QUEUE_BUCKETS = (1e-5, 1e-4, 1e-3, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)
"""controller-runtime's buckets for queue and work durations (10 us to 1,000 s)."""

Running = Callable[[], list[float]]
"""Seconds each key in process has been processed for (a queue's `running`)."""


class _InProcess(Collector):
    """Unfinished work and the longest running processor, read from each queue when
    scraped (the queues are read from the scrape's thread: copies of plain values)."""

    def __init__(self) -> None:
        self.queues: dict[str, Running] = {}

    def collect(self) -> Iterator[Metric]:
        unfinished = GaugeMetricFamily(
            "workqueue_unfinished_work_seconds",
            "Seconds of work in progress not yet observed by work_duration: large values "
            "mean stuck workers.",
            labels=["name"],
        )
        longest = GaugeMetricFamily(
            "workqueue_longest_running_processor_seconds",
            "Seconds the longest running worker of the queue has been processing its key.",
            labels=["name"],
        )
        for name, running in list(self.queues.items()):
            ages = running()
            unfinished.add_metric([name], sum(ages))
            longest.add_metric([name], max(ages, default=0.0))
        yield from (unfinished, longest)


class WorkQueueMetrics:
    """The workqueue families, registered in `registry`; `observer(name, running)` gives
    one queue's reporter."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.depth = Gauge(
            "workqueue_depth", "Current depth of the queue.", ["name"], registry=registry
        )
        self.adds = Counter(
            "workqueue_adds", "Adds handled by the queue.", ["name"], registry=registry
        )
        self.retries = Counter(
            "workqueue_retries",
            "Retries (rate-limited adds) handled by the queue.",
            ["name"],
            registry=registry,
        )
        self.queue_duration = Histogram(
            "workqueue_queue_duration_seconds",
            "Seconds a key waits in the queue before a worker takes it.",
            ["name"],
            buckets=QUEUE_BUCKETS,
            registry=registry,
        )
        self.work_duration = Histogram(
            "workqueue_work_duration_seconds",
            "Seconds processing a key takes.",
            ["name"],
            buckets=QUEUE_BUCKETS,
            registry=registry,
        )
        self._in_process = _InProcess()
        registry.register(self._in_process)

    def observer(self, name: str, running: Running) -> QueueReport:
        """The reporter of the queue `name`, whose keys in process `running()` returns."""
        self._in_process.queues[name] = running
        return QueueReport(self, name)


@dataclass(frozen=True)
class QueueReport:
    """One queue's metrics (a `workqueue.QueueObserver`)."""

    metrics: WorkQueueMetrics
    name: str

    def added(self) -> None:
        self.metrics.adds.labels(name=self.name).inc()

    def retried(self) -> None:
        self.metrics.retries.labels(name=self.name).inc()

    def depth(self, depth: int) -> None:
        self.metrics.depth.labels(name=self.name).set(depth)

    def waited(self, seconds: float) -> None:
        self.metrics.queue_duration.labels(name=self.name).observe(seconds)

    def worked(self, seconds: float) -> None:
        self.metrics.work_duration.labels(name=self.name).observe(seconds)


_default: WorkQueueMetrics | None = None


def default_queue_metrics() -> WorkQueueMetrics:
    """The operator's queue metrics, in `prometheus_client.REGISTRY` (registered once)."""
    global _default
    if _default is None:
        _default = WorkQueueMetrics(prometheus_client.REGISTRY)
    return _default
