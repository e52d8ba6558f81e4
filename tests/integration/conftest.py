"""Fixtures of the operator's integration tests: the operator, its namespace and helpers;
the session sandbox they run against comes from tests/conftest.py."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubesandbox.testing import RunningSandbox
from support.harness import Cluster, Operator, fresh_namespace
from support.services import Services


@pytest.fixture
def namespace(sandbox: RunningSandbox) -> Iterator[str]:
    """A fresh namespace of the session sandbox, with the project's CRDs applied."""
    with fresh_namespace(sandbox) as name:
        yield name


@pytest.fixture
def operator_env() -> dict[str, str]:
    """Extra environment of the operator under test; a test module overrides it."""
    return {}


@pytest.fixture
def operator(
    sandbox: RunningSandbox, namespace: str, tmp_path: Path, operator_env: dict[str, str]
) -> Iterator[Operator]:
    """`bigmodel run` watching `namespace`, stopped after the test."""
    running = Operator(sandbox, namespace, tmp_path / "operator.log", operator_env)
    running.start()
    yield running
    running.stop()


@pytest.fixture
def cluster(sandbox: RunningSandbox, namespace: str) -> Cluster:
    """kubectl and job helpers in `namespace`."""
    return Cluster(sandbox, namespace)


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of the example trainer's checkpoints (a short run, one process), which
    the service tests serve."""
    directory = tmp_path_factory.mktemp("checkpoints")
    subprocess.run(
        [
            *(sys.executable, "-m", "bigmodel.runtime.example_trainer", "--steps", "20"),
            *("--batch-size", "4", "--checkpoint-dir", str(directory)),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return directory


@pytest.fixture
def services(cluster: Cluster) -> Services:
    """kubectl helpers for the BigModelServices of `namespace`."""
    return Services(cluster)
