"""Fixtures of the sandbox's own tests: one sandbox for the session (started as
`kubesandbox up`), a factory for private ones, a client and a fresh namespace."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

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
