"""The chart's Prometheus rules: valid (`promtool check rules`), tested (`promtool test
rules`), and reading only series that the pods or the operator actually export."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bigmodel.runtime.exposition import METRIC_NAMES
from bigmodel.telemetry.export import OperatorMetrics, ResourceTelemetry, ServiceScale

FILES = Path(__file__).resolve().parents[2] / "charts" / "bigmodel-operator" / "files"
RULES = FILES / "prometheus-rules.yaml"
RULE_TESTS = FILES / "prometheus-rules.test.yaml"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (Debian package `prometheus`)"
)


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], cwd=FILES, capture_output=True, text=True, timeout=120, check=False
    )


@needs_promtool
def test_promtool_accepts_the_rules() -> None:
    result = promtool("check", "rules", RULES.name)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_unit_tests_pass() -> None:
    result = promtool("test", "rules", RULE_TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr


def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def exported_names() -> set[str]:
    """Sample names of the operator's registry, with every family present."""
    metrics = OperatorMetrics(CollectorRegistry())
    metrics.record(ResourceTelemetry("ns", "BigModelJob", "a", {"0": 1.0}, {"0": 1.0}, 1.0, 1.0))
    metrics.set_phase("ns", "BigModelJob", "a", "Running")
    metrics.record_scale(ServiceScale("ns", "s", 2, 1, 3.0, "inFlight", 3.0, 8.0))
    with pytest.raises(RuntimeError), metrics.reconciling("BigModelJob"):
        raise RuntimeError("a failed pass")
    metrics.count_failure("ns")
    text = generate_latest(metrics.registry).decode()
    return {s.name for f in text_string_to_metric_families(text) for s in f.samples}


def test_rules_read_only_series_that_exist() -> None:
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    known = recorded | set(METRIC_NAMES) | exported_names()
    for rule in rules():
        # Label names are not series: drop matchers `{...}` and `by (...)`-like clauses.
        expr = re.sub(r"\{[^}]*\}|\b(?:by|on|without|ignoring)\s*\([^)]*\)", "", rule["expr"])
        for name in re.findall(r"\bbigmodel[:_][a-z0-9_:]+", expr):
            assert name in known, f"{rule.get('record') or rule.get('alert')} reads {name}"


def test_rule_names_follow_the_level_metric_operation_convention() -> None:
    for rule in rules():
        if "record" in rule:
            assert re.fullmatch(r"bigmodel:[a-z_]+:[a-z0-9_]+", rule["record"]), rule["record"]
        else:
            assert rule["alert"].startswith("BigModel")
            assert rule["labels"]["severity"] in {"info", "warning", "critical"}
            assert {"summary", "description"} <= set(rule["annotations"])
