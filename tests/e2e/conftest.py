"""A real cluster for end-to-end tests: KUBECONFIG's current context, only when asked for.

The tests run only with BIGMODEL_E2E=1 (`make e2e` sets it): a developer's kubeconfig may
point at a shared or production cluster, so being configured is not consent. They also skip
when the cluster cannot be reached. Expected on the cluster (as `make kind-up` leaves it): the
chart installed in BIGMODEL_E2E_OPERATOR_NAMESPACE (default bigmodel-system), the CRDs, and
the images loaded.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.e2e_cluster import Cluster, skip_reason


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test here is an e2e test (`-m e2e` selects them; `-m 'not e2e'` leaves them)."""
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def reachable() -> None:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def real_cluster(reachable: None) -> Iterator[Cluster]:
    """A fresh namespace per test, deleted afterwards (with everything in it)."""
    namespace = f"bigmodel-e2e-{uuid.uuid4().hex[:8]}"
    operator_namespace = os.environ.get("BIGMODEL_E2E_OPERATOR_NAMESPACE", "bigmodel-system")
    real_cluster = Cluster(namespace, operator_namespace)
    real_cluster.kubectl("create", "namespace", namespace)
    try:
        yield real_cluster
    finally:
        real_cluster.kubectl("delete", "namespace", namespace, "--wait=false")
