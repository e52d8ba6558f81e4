"""Jobs with a known ending, for the API fault suites: each script says how its pods end
run by run, and the phase and restarts the job must then reach, faults or not; and the
operator's error counters checked against the faults the sandbox logged."""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubesandbox.apiserver.http import requestlog
from support.chaos import SIMULATED, JobsView, Snapshot, doubled
from support.examples import example
from support.harness import Operator

OPERATOR_AGENTS = ("kopf/", "bigmodel-operator/")
"""The operator's requests: kopf's own and its API client's."""
CLIENT_AGENT = "bigmodel-operator/"


@dataclass(frozen=True)
class Script:
    """A job, the exit codes of its pods run after run (0: every node pod succeeds; else
    the last node fails with it), and how it must end."""

    name: str
    spec: dict[str, Any]
    exits: tuple[int, ...] = ()
    phase: str = "Succeeded"
    restarts: int = 0


def simulated(name: str, exits: tuple[int, ...], phase: str, restarts: int, **run: Any) -> Script:
    spec = {**SIMULATED, "nodes": 2, "runPolicy": {"backoffLimit": 2, **run}}
    return Script(name, spec, exits, phase, restarts)


def trainer(name: str, steps: int = 20) -> Script:
    """The CPU example (real torchrun, 2 nodes x 2 processes), short; it ends by itself."""
    spec = copy.deepcopy(example("cpu-job.yaml", "BigModelJob")["spec"])
    for checkpoints in ("volumes", "volumeMounts"):  # no claim in the suite's namespaces
        spec.pop(checkpoints)
    spec["args"] = ["--steps", str(steps), "--batch-size", "4", "--log-every", "5"]
    return Script(name, spec)


SCRIPTS = (
    simulated("succeeds", (0,), "Succeeded", 0),
    simulated("fails", (1,), "Failed", 0, backoffLimit=0),
    simulated("restarts", (1, 0), "Succeeded", 1),
    simulated("permanent", (2,), "Failed", 0, restartPolicy="ExitCode"),
)
"""Jobs on simulated nodes, one of each ending."""


FAULTS = {
    "error:500": "error:code=500,rate=0.1",
    "error:503": "error:code=503,rate=0.1",
    "error:429": "error:code=429,rate=0.1,seconds=1",
    "conflict": "conflict:rate=0.2",
    "gone": "gone:rate=0.5",
    "drop": "drop:seconds=3",
    "stall": "stall:seconds=1,every=4",
    "slow": "slow:seconds=0.2,rate=0.3",
}
"""One rule per kind of API fault, at the rates the suites inject."""


def operator_faults(namespace: str, *kinds: str) -> list[str]:
    """The rules of `kinds` (all when none), on the operator's requests in `namespace`."""
    selector = f",namespaces={namespace},user_agents={'+'.join(OPERATOR_AGENTS)}"
    return [FAULTS[kind] + selector for kind in kinds or FAULTS]


@dataclass
class ScriptedJobs:
    """Drives scripted jobs: once a run's pods all run, they end as scripted."""

    view: JobsView
    scripts: tuple[Script, ...]
    applied: Counter[str] = field(default_factory=Counter)
    """Runs whose exits were applied, per job."""

    def start(self) -> None:
        for script in self.scripts:
            self.view.create(script.name, script.spec)

    def step(self) -> None:
        snap = self.view.snapshot()
        for script in self.scripts:
            run = self.applied[script.name]
            if run < len(script.exits) and self._running(snap, script, run):
                pods = sorted(snap.pods[script.name], key=lambda p: p["metadata"]["name"])
                code = script.exits[run]
                for pod in pods if code == 0 else pods[-1:]:
                    self.view.exit(pod["metadata"]["name"], code)
                self.applied[script.name] += 1

    @staticmethod
    def _running(snap: Snapshot, script: Script, run: int) -> bool:
        status = (snap.jobs.get(script.name) or {}).get("status") or {}
        pods = snap.pods.get(script.name, [])
        return (
            status.get("phase") == "Running"
            and status.get("restarts", 0) == run
            and len(pods) == script.spec["nodes"]
            and all((p.get("status") or {}).get("phase") == "Running" for p in pods)
        )

    def done(self) -> bool:
        snap = self.view.snapshot()
        return all(
            ((snap.jobs.get(s.name) or {}).get("status") or {}).get("phase")
            in ("Succeeded", "Failed")
            for s in self.scripts
        )

    def describe(self) -> dict[str, object]:
        """Each job's phase, restarts and pods' phases (what a time-out shows)."""
        snap = self.view.snapshot()
        return {
            s.name: (
                ((snap.jobs.get(s.name) or {}).get("status") or {}).get("phase"),
                ((snap.jobs.get(s.name) or {}).get("status") or {}).get("restarts"),
                {p["metadata"]["name"]: p["status"]["phase"] for p in snap.pods.get(s.name, [])},
            )
            for s in self.scripts
        }

    def problems(self) -> list[str]:
        """Endings other than scripted, restarts past backoffLimit, doubled conditions or
        restart events."""
        snap, found = self.view.snapshot(), []
        for script in self.scripts:
            job = snap.jobs[script.name]
            status = job.get("status") or {}
            got = (status.get("phase"), status.get("restarts", 0))
            if got != (script.phase, script.restarts):
                found.append(f"{script.name}: {got}, expected {(script.phase, script.restarts)}")
            limit = job["spec"]["runPolicy"]["backoffLimit"]
            if status.get("restarts", 0) > limit:
                found.append(f"{script.name}: {status['restarts']} restarts > backoffLimit {limit}")
            found += [f"{script.name}: {p}" for p in doubled(job, self.view.events(script.name))]
        return found


def logged_errors(log: Path, since: int) -> Counter[str]:
    """Errors and conflicts injected into the operator's API client's requests, by status
    code, from the request log after entry `since`."""
    entries = requestlog.read(log)[since:]
    return Counter(
        str(e["code"])
        for e in entries
        if e["userAgent"].startswith(CLIENT_AGENT)
        and any(f.startswith(("error:", "conflict")) for f in (e.get("fault") or "").split(","))
    )


def counted_errors(operator: Operator) -> Counter[str]:
    """`bigmodel_api_errors_total` of the operator, by code (methods added up)."""
    found: Counter[str] = Counter()
    for (code, _method), value in operator.samples("bigmodel_api_errors_total").items():
        found[code] += int(value)
    return found
