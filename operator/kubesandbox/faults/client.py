"""A client of the admin routes (`faults.admin`): set or clear the API's fault plan, kill a
pod's processes, evict a pod, take a node away. The test helpers (`RunningSandbox.faults`)
and `kubesandbox fault` use it; it reads the URL, CA and admin token from the kubeconfig."""

from __future__ import annotations

import base64
import contextlib
import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

from kubesandbox.faults.plan import Rule, parse_rule


class AdminError(Exception):
    """The admin route refused the call: its status code and message."""


class FaultClient:
    """The admin routes of one sandbox."""

    def __init__(self, url: str, token: str, tls: ssl.SSLContext | None = None) -> None:
        self.url, self.token, self.tls = url.rstrip("/"), token, tls

    @classmethod
    def from_kubeconfig(cls, path: Path) -> FaultClient:
        """The sandbox a kubeconfig it wrote points at, with its admin token and CA."""
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
        cluster = config["clusters"][0]["cluster"]
        ca = base64.b64decode(cluster["certificate-authority-data"]).decode()
        tls = ssl.create_default_context(cadata=ca)
        return cls(cluster["server"], config["users"][0]["user"]["token"], tls)

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        request = urllib.request.Request(
            f"{self.url}/sandbox/v1/{path}",
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30, context=self.tls) as response:
                return json.load(response)
        except urllib.error.HTTPError as exc:
            message = json.loads(exc.read() or b"{}").get("message", exc.reason)
            raise AdminError(f"{method} {path}: {exc.code} {message}") from None

    def set(self, rules: Iterable[Rule | str], seed: int = 0) -> dict[str, Any]:
        """Replace the fault plan (rules as `Rule` or `--fault` text); returns it."""
        parsed = [parse_rule(r) if isinstance(r, str) else r for r in rules]
        body = {"seed": seed, "rules": [r.to_json() for r in parsed]}
        return dict(self._call("PUT", "faults", body))

    def clear(self) -> dict[str, Any]:
        """No more API faults; returns the plan with the counts of what was injected."""
        return dict(self._call("DELETE", "faults"))

    def plan(self) -> dict[str, Any]:
        """The plan in force and the counts of faults injected since it was set."""
        return dict(self._call("GET", "faults"))

    def injected(self) -> dict[str, int]:
        """Faults injected since the plan was set, by label (`error:503`, `kill`, ...)."""
        return dict(self.plan()["injected"])

    @contextlib.contextmanager
    def injecting(self, rules: Iterable[Rule | str], seed: int = 0) -> Iterator[FaultClient]:
        """The plan in force for the duration of the block, cleared afterwards."""
        self.set(rules, seed)
        try:
            yield self
        finally:
            self.clear()

    def kill(self, namespace: str, pod: str, children_only: bool = False) -> int:
        """SIGKILL the pod's processes (`children_only`: not the containers' own, e.g.
        torchrun's workers, not torchrun); how many were killed."""
        path = f"namespaces/{namespace}/pods/{pod}/kill"
        return int(self._call("POST", path, {"childrenOnly": children_only})["killed"])

    def evict(self, namespace: str, pod: str, message: str = "") -> None:
        """Evict the pod as node pressure does: Failed, reason Evicted."""
        self._call("POST", f"namespaces/{namespace}/pods/{pod}/evict", {"message": message})

    def node_ready(self, node: str, ready: bool, seconds: float = 0) -> list[str]:
        """Mark a node Ready, or lost (NotReady) for `seconds` (0: until marked Ready); the
        names of the pods the loss evicted."""
        body = {"ready": ready, "seconds": seconds}
        return list(self._call("POST", f"nodes/{node}/ready", body)["evicted"])
