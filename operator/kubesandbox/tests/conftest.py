"""Fixtures of the sandbox's own tests: one sandbox for the session (started as
`kubesandbox up`), a factory for private ones, a client and a fresh namespace of it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, config

from kubesandbox.testing import RunningSandbox, start_sandbox


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
def api(sandbox: RunningSandbox) -> client.ApiClient:
    """The official client, configured from the sandbox's kubeconfig."""
    return config.new_client_from_config(str(sandbox.kubeconfig))


@pytest.fixture
def ns(sandbox: RunningSandbox) -> Iterator[str]:
    """A fresh namespace of the sandbox for one test. A module that needs a sandbox of its
    own overrides `sandbox` with a module-scoped fixture of that name."""
    with sandbox.namespace("t") as name:
        yield name
