"""BigModelServices in a test namespace: apply, read status and pods, call the model through
the Service's address (the demo's clients: `call`, `completion`, `steady_load`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bigmodel.demo import load
from kubesandbox.testing import wait_for
from support.examples import example
from support.harness import Cluster

MODEL = "tiny-chat"
TESTS = Path(__file__).resolve().parents[1]


def example_spec(checkpoints: Path, **changes: Any) -> dict[str, Any]:
    """examples/cpu-service.yaml's spec serving the checkpoints in `checkpoints` (a host
    directory: the sandbox's pods are processes here), with `changes`."""
    spec: dict[str, Any] = example("cpu-service.yaml", "BigModelService")["spec"]
    spec["volumes"] = [{"name": "checkpoints", "hostPath": {"path": str(checkpoints)}}]
    return {**spec, **changes}


def chat_spec(models: Path, **changes: Any) -> dict[str, Any]:
    """examples/chat-service.yaml's spec serving the Hugging Face-format model directories
    in `models` (a host directory standing in for its volume), with `changes`."""
    spec: dict[str, Any] = example("chat-service.yaml", "BigModelService")["spec"]
    spec["volumes"] = [{"name": "models", "hostPath": {"path": str(models)}}]
    return {**spec, **changes}


class Services:
    """kubectl helpers for the BigModelServices of one test namespace."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    def apply(self, name: str, spec: dict[str, Any]) -> None:
        service = {
            "apiVersion": "bigmodel.dev/v1alpha1",
            "kind": "BigModelService",
            "metadata": {"name": name},
            "spec": spec,
        }
        self.cluster.kubectl("apply", "-f", "-", input=json.dumps(service))

    def patch(self, name: str, spec: dict[str, Any]) -> None:
        self.cluster.kubectl("patch", "bms", name, "--type=merge", "-p", json.dumps({"spec": spec}))

    def status(self, name: str) -> dict[str, Any]:
        got = json.loads(self.cluster.kubectl("get", "bms", name, "-o", "json"))
        return dict(got.get("status") or {})

    def condition(self, name: str, type_: str) -> dict[str, Any]:
        return next(c for c in self.status(name)["conditions"] if c["type"] == type_)

    def replicas(self, name: str) -> list[dict[str, Any]]:
        """The service's replica pods that are not being deleted."""
        out = self.cluster.kubectl(
            "get", "pods", "-l", f"bigmodel.dev/service={name}", "-o", "json"
        )
        pods = json.loads(out)["items"]
        return [p for p in pods if not p["metadata"].get("deletionTimestamp")]

    def wait(self, name: str, phase: str, ready: int | None = None, timeout: float = 90) -> Any:
        """The status once the service is in `phase` (with `ready` ready replicas)."""

        def reached() -> dict[str, Any] | None:
            status = self.status(name)
            ok = status.get("phase") == phase and ready in (None, status.get("readyReplicas"))
            return status if ok else None

        def context() -> str:
            return self.cluster.kubectl("get", "bms,deploy,pods", "-o", "wide") + json.dumps(
                self.status(name), indent=1
            )

        return wait_for(f"{name} {phase} ({ready} ready)", reached, timeout, context)

    def address(self, name: str) -> str:
        """`http://<cluster IP>:<port>` of the service's ClusterIP Service (the sandbox's
        service addresses answer on this host)."""
        front = json.loads(self.cluster.kubectl("get", "service", name, "-o", "json"))
        return f"http://{front['spec']['clusterIP']}:{front['spec']['ports'][0]['port']}"


call = load.call


def completion(address: str, tokens: int = 8) -> tuple[int, Any]:
    """A greedy completion of the tests' model."""
    return load.completion(address, MODEL, tokens=tokens)


def steady_load(address: str, clients: int, tokens: int = 8) -> load.Load:
    """Steady load on the tests' model."""
    return load.Load(address, MODEL, clients, tokens)
