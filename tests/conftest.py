"""Session fixtures of the operator's tests: one sandbox for the whole session (started as
`kubesandbox up`). The sandbox's own tests have theirs in operator/kubesandbox/tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kubesandbox.testing import RunningSandbox, start_sandbox


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    """One sandbox per test session, with 2 simulated nodes of 8 GPUs each."""
    state_dir = tmp_path_factory.mktemp("sandbox")
    with start_sandbox(state_dir, "--simulated-nodes", "2", "--gpus-per-node", "8") as running:
        yield running
