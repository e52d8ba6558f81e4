"""The operator's /metrics: T_i, T, S of live resources only, bounded labels, health."""

from __future__ import annotations

import prometheus_client
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bigmodel.api import JOB_KIND, SERVICE_KIND
from bigmodel.telemetry.export import (
    OperatorMetrics,
    ResourceTelemetry,
    default_metrics,
)
from bigmodel.telemetry.readings import MissingReason
from bigmodel.telemetry.serving import TokenRound

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(metrics: OperatorMetrics) -> Samples:
    """Every sample as the registry renders it, parsed back by prometheus_client."""
    text = generate_latest(metrics.registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: Samples, metric: str, /, **labels: str) -> float | None:
    return found.get((metric, tuple(sorted(labels.items()))))


def demo(name: str = "demo", **changes: object) -> ResourceTelemetry:
    base: dict[str, object] = {
        "task_seconds": {"0": 0.2, "1": 0.5},
        "relative_speed": {"0": 1.0, "1": 0.4},
        "total": 0.7,
        "quality": 3.5,
        "stragglers": 1,
    }
    return ResourceTelemetry("ns", JOB_KIND, name, **{**base, **changes})  # type: ignore[arg-type]


@pytest.fixture
def metrics() -> OperatorMetrics:
    return OperatorMetrics(CollectorRegistry())


def test_a_round_exports_per_node_and_per_resource_series(metrics: OperatorMetrics) -> None:
    metrics.record(demo())
    found = samples(metrics)
    job = {"namespace": "ns", "kind": JOB_KIND, "name": "demo"}
    assert value(found, "bigmodel_node_task_seconds", **job, node="1") == 0.5
    assert value(found, "bigmodel_node_relative_speed", **job, node="1") == 0.4
    assert value(found, "bigmodel_task_seconds", **job) == 0.7
    assert value(found, "bigmodel_service_quality", **job) == 3.5
    assert value(found, "bigmodel_nodes", **job) == 2
    assert value(found, "bigmodel_stragglers", **job) == 1


def test_a_node_that_did_not_answer_has_no_series(metrics: OperatorMetrics) -> None:
    metrics.record(demo())
    metrics.record(demo(task_seconds={"0": 0.2}, relative_speed={"0": 1.0}))
    node_series = [key for key in samples(metrics) if key[0].startswith("bigmodel_node_")]
    assert {dict(labels)["node"] for _, labels in node_series} == {"0"}


def test_without_any_answer_t_and_s_are_absent_not_zero(metrics: OperatorMetrics) -> None:
    metrics.record(ResourceTelemetry("ns", JOB_KIND, "demo"))
    found = samples(metrics)
    assert value(found, "bigmodel_task_seconds", namespace="ns", kind=JOB_KIND, name="demo") is None
    assert (
        value(found, "bigmodel_service_quality", namespace="ns", kind=JOB_KIND, name="demo") is None
    )
    assert value(found, "bigmodel_nodes", namespace="ns", kind=JOB_KIND, name="demo") == 0


def test_an_llm_service_exports_ttft_and_tpot_per_replica_and_their_mean(
    metrics: OperatorMetrics,
) -> None:
    tokens = TokenRound(90, {"chat-a": 0.2, "chat-b": 0.4}, {"chat-a": 0.05})
    metrics.record(ResourceTelemetry("ns", SERVICE_KIND, "chat", tokens=tokens))
    found = samples(metrics)
    chat = {"namespace": "ns", "kind": SERVICE_KIND, "name": "chat", "quantile": "0.9"}
    ttft = "bigmodel_node_time_to_first_token_seconds"
    assert value(found, ttft, **chat, node="chat-b") == 0.4
    assert value(found, "bigmodel_time_to_first_token_seconds", **chat) == pytest.approx(0.3)
    assert (
        value(found, "bigmodel_node_time_per_output_token_seconds", **chat, node="chat-b") is None
    )
    assert value(found, "bigmodel_time_per_output_token_seconds", **chat) == 0.05


def test_a_round_without_token_observations_has_no_token_series(metrics: OperatorMetrics) -> None:
    metrics.record(ResourceTelemetry("ns", SERVICE_KIND, "chat", tokens=TokenRound(90)))
    assert not [key for key in samples(metrics) if "token" in key[0]]


def test_forget_removes_every_series_of_the_resource_only(metrics: OperatorMetrics) -> None:
    metrics.record(demo("a"))
    metrics.record(demo("b"))
    metrics.forget("ns", JOB_KIND, "a")
    names = {dict(labels).get("name") for _, labels in samples(metrics)}
    assert "a" not in names
    assert "b" in names


def test_resources_are_counted_by_phase_with_every_known_phase_shown(
    metrics: OperatorMetrics,
) -> None:
    metrics.set_phase("ns", JOB_KIND, "a", "Running")
    metrics.set_phase("ns", JOB_KIND, "b", "Running")
    metrics.set_phase("ns", JOB_KIND, "c", "Failed")
    metrics.set_phase("other", JOB_KIND, "a", "Pending")
    metrics.set_phase("ns", SERVICE_KIND, "s", "Ready")
    metrics.set_phase("ns", JOB_KIND, "c", None)  # deleted
    found = samples(metrics)
    assert value(found, "bigmodel_jobs", namespace="ns", phase="Running") == 2
    assert value(found, "bigmodel_jobs", namespace="ns", phase="Failed") == 0
    assert value(found, "bigmodel_jobs", namespace="ns", phase="Suspended") == 0
    assert value(found, "bigmodel_jobs", namespace="other", phase="Pending") == 1
    assert value(found, "bigmodel_services", namespace="ns", phase="Ready") == 1


def test_job_counters_of_a_namespace_start_at_zero(metrics: OperatorMetrics) -> None:
    metrics.set_phase("ns", JOB_KIND, "a", "Pending")
    found = samples(metrics)
    assert value(found, "bigmodel_job_failures_total", namespace="ns") == 0
    assert value(found, "bigmodel_job_restarts_total", namespace="ns") == 0


def test_reconciles_are_counted_timed_and_errors_counted(metrics: OperatorMetrics) -> None:
    with metrics.reconciling(JOB_KIND):
        pass
    with pytest.raises(RuntimeError), metrics.reconciling(JOB_KIND):
        raise RuntimeError("boom")
    found = samples(metrics)
    assert value(found, "bigmodel_reconciles_total", kind=JOB_KIND) == 2
    assert value(found, "bigmodel_reconcile_errors_total", kind=JOB_KIND) == 1
    assert value(found, "bigmodel_reconcile_duration_seconds_count", kind=JOB_KIND) == 2


def test_restarts_failures_and_scrape_failures_are_counted(metrics: OperatorMetrics) -> None:
    metrics.count_restart("ns")
    metrics.count_restart("ns")
    metrics.count_failure("ns")
    metrics.record_round(JOB_KIND, [None, MissingReason.TIMEOUT, MissingReason.TIMEOUT], 0.05)
    found = samples(metrics)
    assert value(found, "bigmodel_job_restarts_total", namespace="ns") == 2
    assert value(found, "bigmodel_job_failures_total", namespace="ns") == 1
    assert value(found, "bigmodel_telemetry_scrapes_total", kind=JOB_KIND) == 3
    failures = value(
        found, "bigmodel_telemetry_scrape_failures_total", kind=JOB_KIND, reason="Timeout"
    )
    assert failures == 2


def test_names_follow_prometheus_conventions(metrics: OperatorMetrics) -> None:
    metrics.record(demo())
    families = list(text_string_to_metric_families(generate_latest(metrics.registry).decode()))
    for family in families:
        assert family.name.startswith("bigmodel_")
        if family.type == "counter":
            assert not family.name.endswith("_total")  # the parser strips it: samples have it
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples)
        if family.type == "histogram":
            assert family.name.endswith("_seconds")


def test_api_errors_are_counted_by_method_and_code(metrics: OperatorMetrics) -> None:
    metrics.count_api_error("patch", "503")
    metrics.count_api_error("PATCH", "503")
    metrics.count_api_error("GET", "timeout")
    found = samples(metrics)
    assert value(found, "bigmodel_api_errors_total", method="PATCH", code="503") == 2
    assert value(found, "bigmodel_api_errors_total", method="GET", code="timeout") == 1


def test_label_names_are_bounded(metrics: OperatorMetrics) -> None:
    metrics.record(demo())
    metrics.record_round(JOB_KIND, [MissingReason.TIMEOUT], 0.1)
    metrics.count_api_error("GET", "500")
    with metrics.reconciling(JOB_KIND):
        pass
    metrics.record(ResourceTelemetry("ns", SERVICE_KIND, "chat", tokens=TokenRound(90, {"a": 1.0})))
    allowed = {"namespace", "kind", "name", "node", "phase", "reason", "le", "method", "code"}
    allowed.add("quantile")  # the percentile of TTFT and TPOT, from the service's spec
    assert {k for _, labels in samples(metrics) for k, _ in labels} <= allowed


def test_default_metrics_live_in_the_global_registry_once() -> None:
    first = default_metrics()
    assert first is default_metrics()
    assert first.registry is prometheus_client.REGISTRY
