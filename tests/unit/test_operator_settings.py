"""The operator's settings, read once at start from `bigmodel run`'s flags and the
environment: defaults, every variable, bad values named, and the documented table."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

from bigmodel.controller.election import ENV_PREFIX, ElectionSettings
from bigmodel.controller.job.timing import Timing
from bigmodel.controller.operator_settings import OperatorSettings
from bigmodel.manifests.service import RuntimeImages

TABLE = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_without_environment_every_setting_has_its_default() -> None:
    settings = OperatorSettings.read({}, ["ml"], 8081, 8080)
    assert (settings.namespaces, settings.health_port, settings.metrics_port) == (
        ("ml",),
        8081,
        8080,
    )
    assert settings.timing == Timing()
    assert (settings.workers, settings.telemetry_workers) == (32, 8)
    assert (settings.telemetry_interval, settings.service_resync) == (15.0, 60.0)
    assert (settings.api_grace, settings.watch_stall) == (30.0, 120.0)
    assert settings.images == RuntimeImages()
    assert settings.election.enabled and settings.election.lease_namespace == "ml"


def test_every_variable_is_read() -> None:
    env = {
        "BIGMODEL_RESTART_BACKOFF": "1",
        "BIGMODEL_RESTART_BACKOFF_MAX": "2",
        "BIGMODEL_ELASTIC_GRACE": "3",
        "BIGMODEL_SETTLE": "0.1",
        "BIGMODEL_RESYNC": "30",
        "BIGMODEL_SERVICE_RESYNC": "20",
        "BIGMODEL_WORKERS": "16",
        "BIGMODEL_TELEMETRY_WORKERS": "2",
        "BIGMODEL_TELEMETRY_INTERVAL": "5",
        "BIGMODEL_TORCH_IMAGE": "registry/server:1",
        "BIGMODEL_VLLM_IMAGE": "registry/vllm:2",
        "BIGMODEL_HEALTH_API_GRACE": "7",
        "BIGMODEL_HEALTH_WATCH_STALL": "9",
        "BIGMODEL_LEADER_ELECTION": "false",
        "BIGMODEL_LEADER_ELECTION_LEASE_NAME": "mine",
    }
    settings = OperatorSettings.read(env)
    assert settings.timing == Timing(1, 2, 3, 0.1, 30)
    assert (settings.service_resync, settings.workers, settings.telemetry_workers) == (20, 16, 2)
    assert settings.telemetry_interval == 5
    assert settings.images == RuntimeImages(torch="registry/server:1", vllm="registry/vllm:2")
    assert (settings.api_grace, settings.watch_stall) == (7, 9)
    assert (settings.election.enabled, settings.election.lease_name) == (False, "mine")
    health = settings.new_health()
    assert (health.api_grace, health.watches.stale_after) == (7, 9)


@pytest.mark.parametrize(
    ("env", "error"),
    [
        ({"BIGMODEL_WORKERS": "0"}, "BIGMODEL_WORKERS='0': must be at least 1"),
        ({"BIGMODEL_TELEMETRY_WORKERS": "x"}, "BIGMODEL_TELEMETRY_WORKERS='x': not a whole number"),
        ({"BIGMODEL_TELEMETRY_INTERVAL": "0"}, "BIGMODEL_TELEMETRY_INTERVAL='0': must be above 0"),
        ({"BIGMODEL_SERVICE_RESYNC": "-1"}, "BIGMODEL_SERVICE_RESYNC='-1': must be at least 0"),
        ({"BIGMODEL_ELASTIC_GRACE": "soon"}, "BIGMODEL_ELASTIC_GRACE='soon': not a number"),
        ({"BIGMODEL_HEALTH_WATCH_STALL": "0"}, "BIGMODEL_HEALTH_WATCH_STALL='0': must be above 0"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable(env: dict[str, str], error: str) -> None:
    with pytest.raises(ValueError, match=re.escape(error)):
        OperatorSettings.read(env)


def test_the_documented_table_lists_every_variable_the_operator_reads() -> None:
    root = Path(__file__).resolve().parents[2] / "operator" / "bigmodel"
    sources = [*root.joinpath("controller").rglob("*.py"), root / "telemetry" / "observe.py"]
    read = {
        name for path in sources for name in re.findall(r'"(BIGMODEL_[A-Z_]+)"', path.read_text())
    }
    read |= {f"BIGMODEL_{f.name.upper()}" for f in fields(Timing)}
    read |= {
        f"{ENV_PREFIX}_{f.name.upper()}" for f in fields(ElectionSettings) if f.name != "enabled"
    }
    documented = set(re.findall(r"`(BIGMODEL_[A-Z_]+)`", TABLE.read_text()))
    assert read - documented == set()
