"""A real training job disrupted again and again: its worker processes SIGKILLed, a pod
evicted, a node lost. Each disruption must cost one gang restart that resumes from the
latest checkpoint (on a persistent volume), never from step zero, and the job must finish.

`Disruptions` drives one job; `disrupt()` waits until a new checkpoint exists, records it,
disrupts, and waits for the rerun to say where it resumed."""

from __future__ import annotations

import json
import random
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes.client.exceptions import ApiException

from kubesandbox.testing import RunningSandbox, wait_for
from support.chaos import JobsView

CHECKPOINT = re.compile(r"step-(\d+)\.pt$")
RESUMED = re.compile(r'"msg": "resumed from step (\d+)"')
KINDS = ("kill", "evict", "node-lost")


def trainer_spec(name: str, steps: int, restarts: int, step_seconds: float) -> dict[str, Any]:
    """2 nodes x 1 process of the example trainer, a checkpoint every 5 steps on the
    persistent volume claim `<name>-ckpt`, each step slowed to `step_seconds`."""
    args = ["--steps", str(steps), "--batch-size", "4", "--log-every", "1"]
    args += ["--checkpoint-every", "5", "--checkpoint-dir", "/ckpt"]
    return {
        "image": "bigmodel-trainer:0.1.0",
        "command": ["python", "-m", "bigmodel.runtime.example_trainer"],
        "args": args,
        "nodes": 2,
        "procsPerNode": 1,
        "resources": {"requests": {"cpu": "1"}},
        "env": [{"name": "BIGMODEL_SLOWDOWN_SECONDS", "value": str(step_seconds)}],
        "volumes": [{"name": "ckpt", "persistentVolumeClaim": {"claimName": f"{name}-ckpt"}}],
        "volumeMounts": [{"name": "ckpt", "mountPath": "/ckpt"}],
        "podTemplate": {"spec": {"terminationGracePeriodSeconds": 5}},
        "runPolicy": {"backoffLimit": restarts + 2},
    }


@dataclass
class Disruptions:
    """One training job under disruption; `resumed` lists (checkpoint before, resumed at)."""

    sandbox: RunningSandbox
    view: JobsView
    name: str
    rng: random.Random
    timeout: float = 240
    resumed: list[tuple[int, int]] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    """Per disruption: from the disruption to the rerun's resume."""

    @property
    def checkpoints(self) -> Path:
        return self.sandbox.state_dir / "volumes" / self.view.ns / f"{self.name}-ckpt"

    def latest(self) -> int:
        steps = [
            int(m.group(1))
            for p in self.checkpoints.glob("step-*.pt")
            if (m := CHECKPOINT.search(p.name))
        ]
        return max(steps, default=0)

    def _pods(self) -> list[dict[str, Any]]:
        return sorted(
            self.view.snapshot().pods.get(self.name, []), key=lambda p: p["metadata"]["name"]
        )

    def _log(self, pod: str) -> str:
        try:
            return str(self.view.core.read_namespaced_pod_log(pod, self.view.ns))
        except ApiException:
            return ""

    def _status(self) -> dict[str, Any]:
        return dict(self.view.snapshot().jobs[self.name].get("status") or {})

    def disrupt(self, kind: str) -> None:
        """Once a checkpoint newer than the last resume exists: disrupt (`kill`: SIGKILL the
        worker processes of a random node, `evict`, `node-lost`: its node NotReady for a
        while); then wait for the rerun's resume and record it."""
        floor = self.resumed[-1][1] if self.resumed else 0
        wait_for(
            f"{self.name}: a checkpoint after step {floor}",
            lambda: (
                self.latest() > floor
                and len(self._pods()) == 2
                and all((p.get("status") or {}).get("phase") == "Running" for p in self._pods())
            ),
            self.timeout,
            lambda: json.dumps(self._status()),
        )
        restarts, pods = self._status().get("restarts", 0), self._pods()
        old_zero = pods[0]["metadata"]["uid"]
        victim = self.rng.choice(pods)
        before, began = self.latest(), time.monotonic()
        self._act(kind, victim["metadata"]["name"], victim["spec"]["node_name"])
        wait_for(
            f"{self.name}: restart {restarts + 1}",
            lambda: self._status().get("restarts", 0) == restarts + 1,
            self.timeout,
        )

        def resumed() -> re.Match[str] | None:
            zero = next(iter(self._pods()), None)
            if zero is None or zero["metadata"]["uid"] == old_zero:
                return None
            return RESUMED.search(self._log(zero["metadata"]["name"]))

        found = wait_for(
            f"{self.name}: the rerun's resume",
            resumed,
            self.timeout,
            lambda: json.dumps(self._status()),
        )
        self.seconds.append(time.monotonic() - began)
        self.resumed.append((before, int(found.group(1))))

    def _act(self, kind: str, pod: str, node: str) -> None:
        faults = self.sandbox.faults
        if kind == "kill":
            assert faults.kill(self.view.ns, pod, children_only=True) >= 1
        elif kind == "evict":
            faults.evict(self.view.ns, pod)
        else:
            assert pod in faults.node_ready(node, False, seconds=15)

    def finish(self) -> dict[str, Any]:
        """Wait for the job to succeed; its status."""
        return dict(
            wait_for(
                f"{self.name} to succeed",
                lambda: (s := self._status()).get("phase") == "Succeeded" and s,
                self.timeout * 2,
                lambda: json.dumps(self._status()),
            )
        )
