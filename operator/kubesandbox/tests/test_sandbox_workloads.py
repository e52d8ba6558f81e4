"""Deployments, ReplicaSets and Services in the sandbox, with real processes and kubectl."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import pytest

from kubesandbox.testing import RunningSandbox, start_sandbox, wait_for

pytestmark = pytest.mark.integration

WEB = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: python:3.11
        # every replica serves its own name and VERSION, on the same port
        command: [sh, -c, 'echo "$(POD_NAME) $(VERSION)" > /www/index.html &&
                  exec python -m http.server 8000 --directory /www']
        env:
        - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
        - {name: VERSION, value: one}
        ports: [{name: http, containerPort: 8000}]
        readinessProbe: {httpGet: {path: /, port: http}, periodSeconds: 1}
        volumeMounts: [{name: www, mountPath: /www}]
      volumes: [{name: www, emptyDir: {}}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 8080, targetPort: http}]
"""


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    """A private sandbox with 2 process nodes."""
    with start_sandbox(tmp_path_factory.mktemp("workloads"), "--nodes", "2") as running:
        yield running


def answers(url: str, tries: int = 12) -> set[str]:
    """The distinct bodies of `tries` requests."""
    bodies = set()
    for _ in range(tries):
        with urllib.request.urlopen(url, timeout=5) as response:
            bodies.add(response.read().decode().strip())
    return bodies


def rollout(sandbox: RunningSandbox, ns: str) -> None:
    """`kubectl rollout status` returns successfully."""
    done = sandbox.kubectl("rollout", "status", "deploy/web", "-n", ns, "--timeout=90s")
    assert "successfully rolled out" in done.stdout


def test_a_deployment_serves_behind_a_service_rolls_scales_and_cascades(
    sandbox: RunningSandbox, ns: str
) -> None:
    sandbox.apply(ns, WEB)
    rollout(sandbox, ns)
    service = sandbox.get(ns, "service", "web")
    url = f"http://{service['spec']['clusterIP']}:8080/"
    pods = {p["metadata"]["name"] for p in sandbox.get(ns, "pods", "-l", "app=web")["items"]}
    assert answers(url) == {f"{name} one" for name in pods}
    endpoints = sandbox.get(ns, "endpoints", "web")
    assert len(endpoints["subsets"][0]["addresses"]) == 2
    assert endpoints["subsets"][0]["ports"][0]["port"] == 8000

    sandbox.kubectl("set", "env", "deploy/web", "-n", ns, "VERSION=two")
    rollout(sandbox, ns)
    status = sandbox.get(ns, "deployment", "web")["status"]
    assert (status["updatedReplicas"], status["availableReplicas"]) == (2, 2)
    assert status["observedGeneration"] == 2
    assert {body.split()[1] for body in answers(url)} == {"two"}
    sets = sandbox.get(ns, "replicasets")["items"]
    assert sorted(rs["spec"]["replicas"] for rs in sets) == [0, 2]
    assert all("pod-template-hash" in rs["metadata"]["labels"] for rs in sets)

    sandbox.kubectl("scale", "deploy/web", "-n", ns, "--replicas=3")
    rollout(sandbox, ns)
    assert len(answers(url, tries=20)) == 3

    sandbox.kubectl("delete", "deploy/web", "-n", ns, "--wait=true", "--timeout=60s")
    wait_for("no pods", lambda: not sandbox.get(ns, "pods")["items"])
    assert sandbox.get(ns, "replicasets")["items"] == []
