"""Fixtures that run a real sandbox (`bigmodel sandbox up`) for integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubesandbox.testing import RunningSandbox, start_sandbox
from support.harness import Cluster, Operator, fresh_namespace


@pytest.fixture
def sandbox_factory() -> Any:
    """`start_sandbox(state_dir, *options)`: a context manager for a private sandbox."""
    return start_sandbox


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    """One sandbox per test session, with 2 simulated nodes of 8 GPUs each."""
    state_dir = tmp_path_factory.mktemp("sandbox")
    with start_sandbox(state_dir, "--simulated-nodes", "2", "--gpus-per-node", "8") as running:
        yield running


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
