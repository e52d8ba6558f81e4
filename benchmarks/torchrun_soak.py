"""Soak test of 2-node x 2-process torchrun jobs run as sandbox pods (no operator).

Each job is a headless Service plus two node pods, started through the sandbox's process
kubelet, optionally while busy loops load the CPUs. Modes:

- `static`: the operator's pod contract (`manifests.job` builders: `torchrun` with the
  static rendezvous from `PET_*`), running a gloo all-reduce.
- `c10d`: the integration test's pods (`--rdzv-backend=c10d --rdzv-endpoint=<job>-node-0.<job>`).
- `restart`: the operator's contract and example trainer with a gang restart: the first run
  trains 10 steps and node 1 exits 3; both pods are deleted and recreated under the same
  names (so the same pod addresses, as the operator does) and the rerun must resume from the
  checkpoint and succeed.

Run: .venv/bin/python benchmarks/torchrun_soak.py [--mode static|c10d|restart] [--jobs 10]
     [--concurrent 2] [--load 2] [--keep DIR]
It prints one line per job and a summary; the logs of failed jobs are kept under --keep.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from bigmodel.api import BigModelJob, parse_resource
from bigmodel.manifests.frameworks.pytorch import node
from bigmodel.manifests.job import build_pod, build_service
from kubesandbox.testing import RunningSandbox, start_sandbox
from support.trainer_scripts import gang_restart_script

DDP = """\
import torch, torch.distributed as dist
dist.init_process_group("gloo")
t = torch.ones(1) * (dist.get_rank() + 1)
dist.all_reduce(t)
print("rank", dist.get_rank(), "of", dist.get_world_size(), "sum", int(t.item()), flush=True)
dist.destroy_process_group()
"""
DONE = ("Succeeded", "Failed")


@dataclass
class Result:
    """One job: passed or not, seconds, and why not."""

    name: str
    ok: bool
    seconds: float
    detail: str = ""
    logs: dict[str, str] = field(default_factory=dict)


def _operator_pods(name: str, namespace: str, command: list[str]) -> list[dict[str, Any]]:
    """The Service and node pods the operator would create for a 2x2 job running `command`."""
    body = {
        "metadata": {"name": name, "namespace": namespace, "uid": f"soak-{name}"},
        "spec": {"image": "soak", "command": command, "nodes": 2, "procsPerNode": 2},
    }
    job = parse_resource(BigModelJob, body)
    service = build_service(job)
    service["spec"]["ports"] = service["spec"]["ports"][:1]  # no metrics server here
    pods = [build_pod(job, node(rank)) for rank in (0, 1)]
    for pod in pods:
        container = pod["spec"]["containers"][0]
        container["env"] = [e for e in container["env"] if not e["name"].startswith("BIGMODEL_")]
        container["env"].append({"name": "PYTHONWARNINGS", "value": "ignore"})
        container["env"].append({"name": "LOGLEVEL", "value": "INFO"})
        pod["spec"]["volumes"] = [v for v in pod["spec"]["volumes"] if v["name"] != "dshm"]
        container["volumeMounts"] = [m for m in container["volumeMounts"] if m["name"] != "dshm"]
    return [service, *pods]


def _c10d_pods(name: str) -> list[dict[str, Any]]:
    """The integration test's pods: torchrun with the c10d rendezvous on node 0's name."""
    pods: list[dict[str, Any]] = []
    for rank in (0, 1):
        args = ["--nnodes=2", "--nproc-per-node=2", f"--node-rank={rank}"]
        args += ["--rdzv-backend=c10d", f"--rdzv-endpoint={name}-node-0.{name}:29500"]
        pods.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": f"{name}-node-{rank}", "labels": {"soak": name}},
                "spec": {
                    "hostname": f"{name}-node-{rank}",
                    "subdomain": name,
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "main",
                            "image": "trainer",
                            "command": ["python", "-m", "torch.distributed.run"],
                            "args": [*args, "--no-python", "python", "-c", DDP],
                            "env": [
                                {"name": "PYTHONWARNINGS", "value": "ignore"},
                                {"name": "LOGLEVEL", "value": "INFO"},
                            ],
                        }
                    ],
                },
            }
        )
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"clusterIP": "None", "selector": {"soak": name}},
    }
    return [service, *pods]


def _documents(objects: list[dict[str, Any]]) -> str:
    """A multi-document YAML stream (of JSON documents)."""
    return "\n---\n".join(json.dumps(o) for o in objects)


class Soak:
    """Jobs against one running sandbox."""

    def __init__(self, sandbox: RunningSandbox, mode: str, work: Path, timeout: float) -> None:
        self.sandbox, self.mode, self.work, self.timeout = sandbox, mode, work, timeout

    def kubectl(self, namespace: str, *args: str, input: str | None = None) -> str:
        done = self.sandbox.kubectl("-n", namespace, *args, input=input, check=False)
        if done.returncode:
            print(f"kubectl {' '.join(args)}: {done.stderr.strip()}", file=sys.stderr)
        return done.stdout

    def phases(self, namespace: str) -> dict[str, str]:
        out = self.kubectl(namespace, "get", "pods", "-o", "json")
        items = json.loads(out or '{"items": []}')["items"]
        return {p["metadata"]["name"]: (p.get("status") or {}).get("phase", "") for p in items}

    def logs(self, namespace: str) -> dict[str, str]:
        folder = self.sandbox.state_dir / "logs" / namespace
        return {
            f"{path.parent.name}/{path.name}": path.read_text(errors="replace")
            for path in sorted(folder.glob("*/*.log"))
        }

    def wait_done(
        self, namespace: str, pods: list[str], deadline: float, any_failed: bool = False
    ) -> dict[str, str]:
        """Phases once every pod is done (or, with `any_failed`, one has failed)."""
        while True:
            phases = self.phases(namespace)
            if all(phases.get(p) in DONE for p in pods) or time.monotonic() > deadline:
                return phases
            if any_failed and "Failed" in phases.values():
                return phases
            time.sleep(0.3)

    def run_job(self, index: int) -> Result:
        name = f"soak{index}"
        namespace = f"soak-{index}-{int(time.time() * 1000) % 100000}"
        self.sandbox.kubectl("create", "namespace", namespace)
        pods = [f"{name}-node-0", f"{name}-node-1"]
        start = time.monotonic()
        deadline = start + self.timeout
        try:
            if self.mode == "c10d":
                objects = _c10d_pods(name)
            elif self.mode == "static":
                objects = _operator_pods(name, namespace, ["python", "-c", DDP])
            else:
                script = gang_restart_script(self.work / namespace)
                objects = _operator_pods(name, namespace, ["bash", "-c", script])
            self.kubectl(namespace, "apply", "-f", "-", input=_documents(objects))
            phases = self.wait_done(namespace, pods, deadline, self.mode == "restart")
            if self.mode == "restart":  # the operator's gang restart: delete both, recreate
                if phases.get(pods[1]) != "Failed" or phases.get(pods[0]) == "Failed":
                    return self._fail(name, namespace, start, f"first run: {phases}")
                self.kubectl(namespace, "delete", "pod", *pods, "--wait=true", "--timeout=120s")
                pod_objects = [o for o in objects if o["kind"] == "Pod"]
                self.kubectl(namespace, "apply", "-f", "-", input=_documents(pod_objects))
                phases = self.wait_done(namespace, pods, deadline)
            if any(phases.get(p) != "Succeeded" for p in pods):
                return self._fail(name, namespace, start, f"phases {phases}")
            logs = self.logs(namespace)
            if self.mode == "restart" and "resumed from step 10" not in logs.get(
                f"{pods[0]}/main.log", ""
            ):
                return self._fail(name, namespace, start, "no resume from step 10")
            return Result(name, True, time.monotonic() - start)
        finally:
            self.sandbox.kubectl("delete", "namespace", namespace, "--wait=false", check=False)

    def _fail(self, name: str, namespace: str, start: float, detail: str) -> Result:
        logs = self.logs(namespace)
        out = self.kubectl(namespace, "get", "pods", "-o", "json")
        ips = [(p.get("status") or {}).get("podIP", "") for p in json.loads(out)["items"]]
        sockets = subprocess.run(["ss", "-tanp"], capture_output=True, text=True).stdout
        wanted = [f"{ip}:" for ip in ips if ip]
        logs["sockets.txt"] = "".join(
            line + "\n" for line in sockets.splitlines() if any(w in line for w in wanted)
        )
        return Result(name, False, time.monotonic() - start, f"{detail} ips {ips}", logs)


def _load(count: int, seconds: float) -> list[subprocess.Popen[bytes]]:
    """`count` busy loops, each ending on its own after `seconds` (or when stopped)."""
    loop = f"import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end: pass"
    return [subprocess.Popen([sys.executable, "-c", loop]) for _ in range(count)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("static", "c10d", "restart"), default="static")
    parser.add_argument("--jobs", type=int, default=10, help="jobs in all")
    parser.add_argument("--concurrent", type=int, default=2, help="jobs at once")
    parser.add_argument("--load", type=int, default=0, help="busy loops while it runs")
    parser.add_argument("--load-seconds", type=float, default=1800, help="at most (default 1800)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per job")
    parser.add_argument("--keep", type=Path, help="where to write the logs of failed jobs")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the load and the sandbox
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="torchrun-soak-") as tmp:
        work = Path(tmp)
        load = _load(args.load, args.load_seconds)
        try:
            with start_sandbox(work / "sandbox", "--nodes", "2") as sandbox:
                soak = Soak(sandbox, args.mode, work, args.timeout)
                with ThreadPoolExecutor(args.concurrent) as pool:
                    for result in pool.map(soak.run_job, range(args.jobs)):
                        results.append(result)
                        state = "ok  " if result.ok else "FAIL"
                        print(f"{state} {result.name} {result.seconds:6.1f}s {result.detail}")
                        sys.stdout.flush()
                        if not result.ok and args.keep:
                            folder = args.keep / result.name
                            shutil.rmtree(folder, ignore_errors=True)
                            for key, text in result.logs.items():
                                (folder / key).parent.mkdir(parents=True, exist_ok=True)
                                (folder / key).write_text(text)
        finally:
            for busy in load:
                busy.kill()
                busy.wait()
    passed = [r.seconds for r in results if r.ok]
    print(
        f"mode={args.mode} jobs={len(results)} concurrent={args.concurrent} load={args.load}: "
        f"{len(passed)} passed, {len(results) - len(passed)} failed; "
        f"seconds per passed job median {statistics.median(passed) if passed else 0:.1f} "
        f"max {max(passed, default=0):.1f}"
    )
    return 0 if len(passed) == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
