"""Chaos workloads against the real operator (`bigmodel run`) and the sandbox, shared by the
short suites in `make test` and `benchmarks/chaos.py`.

- `JobsView`: the jobs, node pods and events of one namespace, read with the kubernetes
  client (a few list calls, not one kubectl per object).
- `Expectations`: what must hold once the operator has converged: every live job has
  exactly one Running pod per node, of one generation, and the restarts the workload caused;
  no pod of a deleted job is left; no job is lost; no condition or restart event doubled.
- `ChurnWorkload`: jobs on simulated nodes created, deleted, their pods failed or deleted at
  random (seeded), each failure counted as the restart it must cause.
- `OperatorKiller`: SIGKILLs the operator at random moments, in a thread, and restarts it.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client, config

from bigmodel.api import GROUP, JOB_PLURAL, VERSION
from bigmodel.manifests.job import GENERATION_ANNOTATION, LABEL_JOB, LABEL_RANK
from kubesandbox.testing import RunningSandbox
from support.harness import EXIT_CODE, Operator

SIMULATED = {
    "image": "sim",
    "command": ["python", "-c", "pass"],
    "nodeSelector": {"type": "simulated"},
}
CHAOS_TIMERS = {"BIGMODEL_RESTART_BACKOFF_MAX": "2"}
"""With the harness's fast timers: restarts a second or two apart at most."""


@dataclass
class Snapshot:
    """Jobs and their node pods (not being deleted) of one namespace at one moment."""

    jobs: dict[str, dict[str, Any]]
    pods: dict[str, list[dict[str, Any]]]
    """Job name -> its live node pods."""


class JobsView:
    """Reads a namespace's jobs, pods and events; writes what the workload does to them."""

    def __init__(self, sandbox: RunningSandbox, namespace: str) -> None:
        api = config.new_client_from_config(str(sandbox.kubeconfig))
        self.ns, self.core, self.custom = (
            namespace,
            client.CoreV1Api(api),
            client.CustomObjectsApi(api),
        )

    def snapshot(self) -> Snapshot:
        listed = self.custom.list_namespaced_custom_object(GROUP, VERSION, self.ns, JOB_PLURAL)
        jobs = {j["metadata"]["name"]: j for j in listed["items"]}
        pods: dict[str, list[dict[str, Any]]] = {}
        for pod in self.core.list_namespaced_pod(self.ns, label_selector=LABEL_JOB).items:
            if pod.metadata.deletion_timestamp is None:
                pods.setdefault(pod.metadata.labels[LABEL_JOB], []).append(pod.to_dict())
        return Snapshot(jobs, pods)

    def create(self, name: str, spec: dict[str, Any]) -> None:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "BigModelJob",
            "metadata": {"name": name},
            "spec": spec,
        }
        self.custom.create_namespaced_custom_object(GROUP, VERSION, self.ns, JOB_PLURAL, body)

    def delete(self, name: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.ns, JOB_PLURAL, name)

    def exit(self, pod: str, code: int) -> None:
        """Make a simulated node's pod finish with `code`."""
        self.core.patch_namespaced_pod(
            pod, self.ns, {"metadata": {"annotations": {EXIT_CODE: str(code)}}}
        )

    def delete_pod(self, pod: str) -> None:
        self.core.delete_namespaced_pod(pod, self.ns)

    def events(self, name: str) -> list[tuple[str, str]]:
        """(reason, message) of the events about job `name`, oldest first."""
        found = self.core.list_namespaced_event(
            self.ns, field_selector=f"involvedObject.name={name}"
        )
        return [(e.reason or "", e.message or "") for e in found.items]


def _ranks(pods: list[dict[str, Any]]) -> list[int]:
    return sorted(int(p["metadata"]["labels"][LABEL_RANK]) for p in pods)


@dataclass
class Expectations:
    """What the workload did: the restarts each live job must show, the jobs deleted."""

    restarts: dict[str, int] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)

    def settled(self, snap: Snapshot, name: str) -> bool:
        """Running, the restarts expected, one Running pod per node of one generation."""
        job = snap.jobs.get(name)
        if job is None:
            return False
        status, pods = job.get("status") or {}, snap.pods.get(name, [])
        generations = {
            (p["metadata"].get("annotations") or {}).get(GENERATION_ANNOTATION) for p in pods
        }
        return (
            status.get("phase") == "Running"
            and status.get("restarts", 0) == self.restarts[name]
            and _ranks(pods) == list(range(job["spec"]["nodes"]))
            and all((p.get("status") or {}).get("phase") == "Running" for p in pods)
            and len(generations) == 1
        )

    def problems(self, view: JobsView) -> list[str]:
        """What does not hold now (empty once converged)."""
        snap, found = view.snapshot(), []
        for name in sorted(self.restarts):
            if name not in snap.jobs:
                found.append(f"{name}: lost")
            elif not self.settled(snap, name):
                status = snap.jobs[name].get("status") or {}
                pods = {
                    p["metadata"]["name"]: (p.get("status") or {}).get("phase")
                    for p in snap.pods.get(name, [])
                }
                found.append(
                    f"{name}: {status.get('phase')} restarts {status.get('restarts')} "
                    f"(expected {self.restarts[name]}), pods {pods}"
                )
        for name in sorted(self.deleted):
            if name in snap.jobs or snap.pods.get(name):
                found.append(f"{name}: deleted, but the job or its pods remain")
        for name in sorted(self.restarts):
            if name in snap.jobs:
                found += [f"{name}: {p}" for p in doubled(snap.jobs[name], view.events(name))]
        return found


def doubled(job: dict[str, Any], events: list[tuple[str, str]]) -> list[str]:
    """Conditions listed twice, and events of one restart (messages naming it) posted twice."""
    types = Counter(c["type"] for c in (job.get("status") or {}).get("conditions") or ())
    found = [f"condition {t} listed {n} times" for t, n in types.items() if n > 1]
    restart_events = Counter(e for e in events if "restart " in e[1])
    found += [f"event {e} posted {n} times" for e, n in restart_events.items() if n > 1]
    restarts = (job.get("status") or {}).get("restarts", 0)
    gang = sum(1 for reason, _ in events if reason == "GangRestart")
    if gang > restarts:
        found.append(f"{gang} GangRestart events for {restarts} restarts")
    return found


class ChurnWorkload:
    """Jobs on simulated nodes, created and deleted, with pods failed or deleted, at random."""

    def __init__(
        self, view: JobsView, rng: random.Random, jobs: int, max_restarts: int = 3
    ) -> None:
        self.view, self.rng, self.target, self.max_restarts = view, rng, jobs, max_restarts
        self.expected = Expectations()
        self.actions: Counter[str] = Counter()
        self._names = 0

    def _create(self) -> None:
        self._names += 1
        name = f"churn-{self._names}"
        spec = {**SIMULATED, "nodes": self.rng.choice((2, 3)), "runPolicy": {"backoffLimit": 50}}
        self.view.create(name, spec)
        self.expected.restarts[name] = 0
        self.actions["created"] += 1

    def start(self) -> None:
        for _ in range(self.target):
            self._create()

    def step(self) -> None:
        """One random action: a job created (while fewer than the target live), deleted, or
        one of its pods failed or deleted (on a settled job, so that it is one restart)."""
        snap = self.view.snapshot()
        live = sorted(self.expected.restarts)
        settled = [
            n
            for n in live
            if self.expected.settled(snap, n) and self.expected.restarts[n] < self.max_restarts
        ]
        if len(live) < self.target:
            self._create()
        elif self.rng.random() < 0.15:
            name = self.rng.choice(live)
            self.view.delete(name)
            del self.expected.restarts[name]
            self.expected.deleted.add(name)
            self.actions["deleted"] += 1
        elif settled:
            name = self.rng.choice(settled)
            pod = self.rng.choice(snap.pods[name])["metadata"]["name"]
            if self.rng.random() < 0.5:
                self.view.exit(pod, self.rng.choice((1, 137)))
                self.actions["pod failed"] += 1
            else:
                self.view.delete_pod(pod)
                self.actions["pod deleted"] += 1
            self.expected.restarts[name] += 1


class OperatorKiller(threading.Thread):
    """Starts the operator, SIGKILLs it after a random moment, `kills` times; then leaves one
    running. `error` holds what stopped it early."""

    def __init__(
        self, operator: Operator, kills: int, rng: random.Random, alive: tuple[float, float]
    ) -> None:
        super().__init__(daemon=True)
        self.operator, self.kills, self.rng, self.alive = operator, kills, rng, alive
        self.done = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for _ in range(self.kills):
                self.operator.start()
                time.sleep(self.rng.uniform(*self.alive))
                self.operator.stop(signal.SIGKILL)
                self.done += 1
            self.operator.start()
        except BaseException as exc:
            self.error = exc


def wait_converged(expected: Expectations, view: JobsView, timeout: float) -> list[str]:
    """Poll until nothing is wrong or `timeout` passes; the problems left."""
    deadline = time.monotonic() + timeout
    while True:
        problems = expected.problems(view)
        if not problems or time.monotonic() > deadline:
            return problems
        time.sleep(1)


def run_until(
    done: Callable[[], bool],
    step: Callable[[], None],
    pause: tuple[float, float],
    rng: random.Random,
    timeout: float = 3600,
    context: Callable[[], object] = lambda: "",
) -> None:
    """Call `step` with random pauses until `done()`; AssertionError after `timeout`,
    showing `context()`."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"not done after {timeout:g} s: {context()}")
        step()
        time.sleep(rng.uniform(*pause))
