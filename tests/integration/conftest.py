"""Fixtures of the operator's integration tests: the operator, its namespace and helpers;
the session sandbox they run against comes from tests/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kubesandbox.testing import RunningSandbox
from support.harness import Cluster, Operator, fresh_namespace


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
