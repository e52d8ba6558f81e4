"""kubectl against the cluster of KUBECONFIG, for the end-to-end tests (see conftest.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
KUBECTL = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or shutil.which("kubectl")


@dataclass
class Cluster:
    """kubectl against the configured cluster, in one test namespace."""

    namespace: str
    operator_namespace: str

    def kubectl(self, *args: str, timeout: float = 120, stdin: str | None = None) -> str:
        assert KUBECTL is not None
        done = subprocess.run(
            [KUBECTL, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed:\n{done.stderr}")
        return done.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json"))


def skip_reason() -> str | None:
    if os.environ.get("BIGMODEL_E2E") != "1":
        return (
            "end-to-end tests need a real cluster and BIGMODEL_E2E=1 "
            "(`make kind-up && make e2e`); KUBECONFIG alone is not consent to use a cluster"
        )
    if KUBECTL is None:
        return "kubectl is not installed (`make venv` puts it in .venv/bin)"
    try:
        done = subprocess.run(
            [KUBECTL, "version", "--request-timeout=10s", "-o", "json"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "the cluster of KUBECONFIG did not answer within 30s"
    if done.returncode != 0 or "serverVersion" not in done.stdout:
        return f"the cluster of KUBECONFIG is unreachable: {done.stderr.strip()[:300]}"
    return None
