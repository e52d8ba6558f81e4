"""Helpers of the operator's integration tests: `bigmodel run` (the image's entry point) as a
subprocess against the sandbox, kubectl in one test namespace, the operator's `/metrics`,
and a real Prometheus."""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from kubesandbox.testing import (
    RunningSandbox,
    answers_ok,
    free_port,
    probe,
    stop_process,
    wait_for,
)

REPO = Path(__file__).resolve().parents[2]
BIGMODEL = str(Path(sys.executable).parent / "bigmodel")
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
EXIT_CODE = "kubesandbox.dev/exit-code"
"""Annotation that makes a pod on a simulated node finish with this exit code."""
FAST_TIMERS = {
    "BIGMODEL_RESTART_BACKOFF": "0.2",
    "BIGMODEL_ELASTIC_GRACE": "1",
    # One operator, as a one-replica install runs it: it leads at once, also right after a
    # SIGKILL of its predecessor (whose lease would otherwise hold for 15 s). The tests of
    # two replicas turn it on.
    "BIGMODEL_LEADER_ELECTION": "false",
}


@contextlib.contextmanager
def fresh_namespace(sandbox: RunningSandbox) -> Iterator[str]:
    """A fresh namespace (CRDs applied), deleted afterwards with everything in it."""
    sandbox.kubectl("apply", "-f", str(REPO / "crds"))
    with sandbox.namespace("job") as name:
        yield name


class Operator:
    """`bigmodel run --namespace NS` as a subprocess, ready once /readyz answers; `env`
    adds to the fast timers (`BIGMODEL_*` settings)."""

    def __init__(
        self,
        sandbox: RunningSandbox,
        namespace: str,
        log: Path,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.sandbox, self.namespace, self.log = sandbox, namespace, log
        self.env = {**FAST_TIMERS, **(env or {})}
        self.metrics_port, self.health_port = free_port(), free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [BIGMODEL, "run", "--namespace", self.namespace]
        command += [
            "--health-port",
            str(self.health_port),
            "--metrics-port",
            str(self.metrics_port),
        ]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                command, env={**self.sandbox.env(), **self.env}, stdout=out, stderr=out
            )
        wait_for("the operator's /readyz", lambda: self._healthy(self.health_port), timeout=60)

    def _healthy(self, port: int) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            pytest.fail(f"operator exited {self.proc.returncode}:\n{self.log.read_text()}")
        return answers_ok(port, "/readyz")

    def probe(self, path: str) -> tuple[int, dict[str, Any]]:
        """The HTTP code and JSON body of the operator's `/healthz` or `/readyz`."""
        return probe(self.health_port, path)

    def metrics(self) -> str:
        """The operator's /metrics page."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())

    def samples(self, metric: str, /, **labels: str) -> dict[tuple[str, ...], float]:
        """Samples of `metric` carrying `labels`: their other label values -> value."""
        found: dict[tuple[str, ...], float] = {}
        for family in text_string_to_metric_families(self.metrics()):
            for sample in family.samples:
                if sample.name == metric and labels.items() <= sample.labels.items():
                    rest = tuple(v for k, v in sorted(sample.labels.items()) if k not in labels)
                    found[rest] = sample.value
        return found

    def leads(self) -> bool:
        """Whether this replica is the leader (`bigmodel_operator_leader`)."""
        return self.samples("bigmodel_operator_leader").get((), 0.0) == 1.0

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        if self.proc is not None:
            stop_process(self.proc, sig)
            self.proc = None

    def __enter__(self) -> Operator:
        """Started (and ready) for the block, stopped after it."""
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


class Cluster:
    """kubectl helpers for one test namespace."""

    def __init__(self, sandbox: RunningSandbox, namespace: str) -> None:
        self.sandbox, self.ns = sandbox, namespace

    def kubectl(self, *args: str, input: str | None = None) -> str:
        return str(self.sandbox.kubectl("-n", self.ns, *args, input=input).stdout)

    def apply_job(self, name: str, spec: dict[str, Any], **metadata: Any) -> None:
        job = {
            "apiVersion": "bigmodel.dev/v1alpha1",
            "kind": "BigModelJob",
            "metadata": {"name": name, **metadata},
            "spec": spec,
        }
        self.kubectl("apply", "-f", "-", input=json.dumps(job))

    def patch_spec(self, name: str, spec: dict[str, Any]) -> None:
        self.kubectl("patch", "bmj", name, "--type=merge", "-p", json.dumps({"spec": spec}))

    def job(self, name: str) -> dict[str, Any]:
        got: dict[str, Any] = json.loads(self.kubectl("get", "bmj", name, "-o", "json"))
        return got

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.job(name).get("status") or {})

    def condition(self, name: str, type_: str) -> dict[str, Any]:
        """The condition `type_` of job `name`."""
        return next(c for c in self.status(name)["conditions"] if c["type"] == type_)

    def pods(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = json.loads(self.kubectl("get", "pods", "-o", "json"))["items"]
        return items

    def pod_phases(self) -> dict[str, str]:
        return {
            p["metadata"]["name"]: p.get("status", {}).get("phase", "")
            for p in self.pods()
            if not p["metadata"].get("deletionTimestamp")
        }

    def wait_phase(self, name: str, phase: str, timeout: float = 30) -> dict[str, Any]:
        return dict(
            wait_for(
                f"{name} to be {phase}",
                lambda: (s := self.status(name)).get("phase") == phase and s,
                timeout,
                lambda: (
                    self.kubectl("get", "bmj,pods", "-o", "wide") + json.dumps(self.status(name))
                ),
            )
        )

    def wait_running_pods(self, count: int) -> dict[str, str]:
        def running() -> dict[str, str] | None:
            phases = self.pod_phases()
            ok = len(phases) == count and all(p == "Running" for p in phases.values())
            return phases if ok else None

        return dict(wait_for(f"{count} running pods", running))

    def exit(self, pod: str, code: int) -> None:
        """Make a simulated node pod finish with `code`."""
        self.kubectl("annotate", "pod", pod, f"{EXIT_CODE}={code}", "--overwrite")

    def uids(self) -> dict[str, str]:
        return {p["metadata"]["name"]: p["metadata"]["uid"] for p in self.pods()}

    def event_list(self, name: str) -> list[dict[str, Any]]:
        """The events of object `name`, oldest first."""
        out = self.kubectl(
            "get", "events", "--field-selector", f"involvedObject.name={name}", "-o", "json"
        )
        items: list[dict[str, Any]] = json.loads(out)["items"]
        return items

    def events(self, name: str) -> list[str]:
        return [e["reason"] for e in self.event_list(name)]


class Prometheus:
    """A real Prometheus process, queried over its HTTP API."""

    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, promql: str) -> dict[tuple[str, ...], float]:
        """Instant query: each series' label values (sorted by label name) -> value."""
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        return {
            tuple(v for _, v in sorted(r["metric"].items())): float(r["value"][1])
            for r in body["data"]["result"]
        }


@contextlib.contextmanager
def running_prometheus(tmp_path: Path, config: Mapping[str, Any]) -> Iterator[Prometheus]:
    """/usr/bin/prometheus with `config` on a free port (data and log in tmp_path), ready
    to answer queries; the test is skipped when Prometheus is not installed."""
    if not Path(PROMETHEUS).exists():
        pytest.skip("prometheus not installed (Debian package `prometheus`)")
    config_file = tmp_path / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(dict(config)))
    port, log = free_port(), tmp_path / "prometheus.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config_file}",
                f"--storage.tsdb.path={tmp_path / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if process.poll() is not None:
            pytest.fail(f"prometheus exited {process.returncode}:\n{log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/-/ready") as response:
            return bool(response.status == 200)
        return False

    try:
        wait_for("prometheus to be ready", ready, timeout=60, context=log.read_text)
        yield Prometheus(url)
    finally:
        process.terminate()
        process.wait(30)
