"""Install the chart into a sandbox with the real `helm`, as docs/install.md tells a user to,
and drive BigModelJobs through it (the chart and RBAC integration tests)."""

from __future__ import annotations

import json
from typing import Any

from kubesandbox.testing import RunningSandbox
from support.helmchart import CHART, NAMESPACE, RELEASE

FULLNAME = f"{RELEASE}-bigmodel-operator"
INSTANCE = f"app.kubernetes.io/instance={RELEASE}"


def install_operator(sandbox: RunningSandbox, *values: str) -> None:
    """`helm install --wait` of the chart, as docs/install.md tells a user to.

    `--wait` returns once the Deployment is available, i.e. the operator pod passed its
    readiness probe (/readyz: started, and the API server answers it)."""
    sandbox.helm(
        "install", RELEASE, str(CHART), "--namespace", NAMESPACE, "--create-namespace",
        "--wait", "--timeout", "120s", *values,
    )  # fmt: skip


def operator_pods(sandbox: RunningSandbox) -> list[dict[str, Any]]:
    """The release's pods that are not being deleted."""
    pods = sandbox.get(NAMESPACE, "pods", "-l", INSTANCE)["items"]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def apply_job(sandbox: RunningSandbox, namespace: str, job: dict[str, Any]) -> None:
    """`kubectl apply` a BigModelJob in `namespace`."""
    sandbox.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(job))


def job_phase(sandbox: RunningSandbox, namespace: str, name: str) -> str | None:
    """`status.phase` of a BigModelJob (None while it has none)."""
    status = sandbox.get(namespace, "bigmodeljob", name).get("status") or {}
    phase: str | None = status.get("phase")
    return phase
