"""Pieces of `scale.py`: a bounded-concurrency JSON client of the sandbox, a pod watch that
times when all pods exist and run, the objects the scenarios create, and a process's CPU
seconds and RSS read from /proc."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bigmodel.api import API_VERSION, BigModelJob, parse_resource
from bigmodel.manifests.frameworks.pytorch import node
from bigmodel.manifests.job import build_pod, build_service
from kubesandbox.testing import (
    RunningSandbox,
    answers_ok,
    free_port,
    probing,
    stop_process,
    wait_for,
)

BIN = Path(sys.executable).parent
NAMESPACE = "bench"
NODES_PER_JOB = 4
SIMULATED_JOB_SPEC: dict[str, Any] = {
    "image": "sim",
    "command": ["python", "train.py"],
    "nodes": NODES_PER_JOB,
    "nodeSelector": {"type": "simulated"},
    # Simulated pods get addresses that nothing listens on: nothing to scrape.
    "metrics": {"enabled": False},
}
"""The spec of every job of the burst and steady-state scenarios (simulated nodes)."""


def job_body(name: str, spec: Mapping[str, Any] = SIMULATED_JOB_SPEC) -> dict[str, Any]:
    """A BigModelJob in the benchmark namespace."""
    return {
        "apiVersion": API_VERSION,
        "kind": "BigModelJob",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": dict(spec),
    }


def job_children(name: str) -> list[dict[str, Any]]:
    """The Service and node pods the operator builds for job `name` (without the owner
    reference: no job exists where the bare client creates them)."""
    body = job_body(name)
    body["metadata"] |= {"uid": f"bench-{name}", "generation": 1}
    job = parse_resource(BigModelJob, body)
    return [build_service(job), *(build_pod(job, node(r)) for r in range(NODES_PER_JOB))]


def path_of(obj: Mapping[str, Any]) -> str:
    """The collection path that creates `obj` in the benchmark namespace."""
    plural = {"Pod": "pods", "Service": "services", "BigModelJob": "bigmodeljobs"}[obj["kind"]]
    root = "/api/v1" if obj["apiVersion"] == "v1" else f"/apis/{obj['apiVersion']}"
    return f"{root}/namespaces/{NAMESPACE}/{plural}"


class Client:
    """JSON over one aiohttp session, at most `concurrency` requests in flight."""

    def __init__(self, sandbox: RunningSandbox, concurrency: int) -> None:
        self.base = sandbox.url
        self.session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=600),
            headers=sandbox.headers(),
            connector=aiohttp.TCPConnector(ssl=sandbox.tls(), limit=concurrency),
        )
        self.slots = asyncio.Semaphore(concurrency)

    async def close(self) -> None:
        await self.session.close()

    async def request(self, method: str, path: str, body: Any = None) -> Any:
        async with (
            self.slots,
            self.session.request(method, self.base + path, json=body) as response,
        ):
            data = await response.json(content_type=None)
            if response.status >= 300 and response.status != 409:
                raise RuntimeError(f"{method} {path}: {response.status} {data}")
            return data

    async def create(self, obj: Mapping[str, Any]) -> None:
        await self.request("POST", path_of(obj), obj)

    async def namespace(self) -> None:
        """Create the benchmark namespace (if absent)."""
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
        await self.request("POST", "/api/v1/namespaces", body)

    async def create_all(self, objs: list[dict[str, Any]]) -> list[float]:
        """Create the objects (in order, `concurrency` at a time); the monotonic time at
        which each creation returned, in order of completion."""
        done: list[float] = []

        async def one(obj: dict[str, Any]) -> None:
            await self.create(obj)
            done.append(time.monotonic())

        await asyncio.gather(*(one(o) for o in objs))
        return done

    async def watch(self, path: str) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """(type, object) of a watch on a collection, from its current objects on."""
        url = f"{self.base}{path}?watch=true"
        async with self.session.get(url, timeout=aiohttp.ClientTimeout(total=None)) as response:
            async for line in response.content:
                if line.strip():
                    event = json.loads(line)
                    yield event["type"], event["object"]


@dataclass
class PodCount:
    """Times (monotonic) at which the namespace first held `target` pods, and `target`
    Running pods; filled by `follow_pods`."""

    target: int
    created: dict[str, float] = field(default_factory=dict)
    running: dict[str, float] = field(default_factory=dict)
    all_running: asyncio.Event = field(default_factory=asyncio.Event)

    def see(self, kind: str, pod: Mapping[str, Any]) -> None:
        uid, now = pod["metadata"]["uid"], time.monotonic()
        if kind == "DELETED":
            return
        self.created.setdefault(uid, now)
        if (pod.get("status") or {}).get("phase") == "Running":
            self.running.setdefault(uid, now)
            if len(self.running) >= self.target:
                self.all_running.set()

    def when(self, times: Mapping[str, float]) -> float:
        """When the `target`-th pod arrived in `times`."""
        return sorted(times.values())[self.target - 1]


async def all_running(count: PodCount, stall: float = 120.0) -> None:
    """Wait until every pod runs; raise when nothing moved for `stall` seconds."""
    while not count.all_running.is_set():
        seen = len(count.created) + len(count.running)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(count.all_running.wait(), stall)
        if not count.all_running.is_set() and len(count.created) + len(count.running) == seen:
            raise RuntimeError(
                f"stalled for {stall:g} s: {len(count.created)} pods created, "
                f"{len(count.running)} running of {count.target}"
            )


async def follow_pods(client: Client, count: PodCount) -> None:
    """Feed `count` from a watch on the benchmark namespace's pods (until cancelled)."""
    async for kind, pod in client.watch(f"/api/v1/namespaces/{NAMESPACE}/pods"):
        count.see(kind, pod)


@contextlib.asynccontextmanager
async def following(client: Client, count: PodCount) -> AsyncIterator[None]:
    """`follow_pods` in the background while the block runs."""
    task = asyncio.create_task(follow_pods(client, count))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError):
            await task


TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (not its children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mb(pid: int) -> float:
    """Resident set size of a process, in MB (10^6 bytes)."""
    pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return pages * PAGE / 1e6


@dataclass
class Usage:
    """CPU share (of one core) and RSS of a process over a window."""

    cpu_share: float
    rss_mb: float
    seconds: float


async def usage(pid: int, seconds: float) -> Usage:
    """Measure a process for `seconds` (CPU over the window, RSS at its end)."""
    start, cpu = time.monotonic(), cpu_seconds(pid)
    await asyncio.sleep(seconds)
    elapsed = time.monotonic() - start
    return Usage((cpu_seconds(pid) - cpu) / elapsed, rss_mb(pid), elapsed)


@contextlib.contextmanager
def cpu_of(pid: int) -> Iterator[list[float]]:
    """CPU seconds a process used during the block, appended to the yielded list."""
    out: list[float] = []
    start = cpu_seconds(pid)
    try:
        yield out
    finally:
        out.append(cpu_seconds(pid) - start)


@dataclass
class RunningOperator:
    """The operator's process, and its liveness answers by HTTP code while it ran."""

    pid: int
    liveness: Counter[int]
    metrics_port: int
    started: float
    """Monotonic time the process was started."""
    ready_seconds: float
    """From starting the process to its first /readyz 200."""


@contextlib.contextmanager
def operator(
    sandbox: RunningSandbox, log: Path, source: Path | None = None
) -> Iterator[RunningOperator]:
    """`bigmodel run --namespace bench` (the image's entry point) until the block ends, its
    /healthz probed every half second (it must never fail, however loaded); `source`: the
    `operator/` directory of another checkout to run instead (first on PYTHONPATH)."""
    health, metrics = free_port(), free_port()
    command = [str(BIN / "bigmodel"), "run", "--namespace", NAMESPACE]
    command += ["--health-port", str(health), "--metrics-port", str(metrics)]
    env = sandbox.env()
    if source is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(source), env.get("PYTHONPATH")]))
    started = time.monotonic()
    with log.open("ab") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=out)
    try:
        wait_for("the operator's /readyz", lambda: answers_ok(health, "/readyz"), timeout=600)
        ready = time.monotonic() - started
        with probing(health, "/healthz") as liveness:
            yield RunningOperator(proc.pid, liveness, metrics, started, ready)
    finally:
        stop_process(proc, timeout=60)


@contextlib.contextmanager
def profiled(pids: Mapping[str, int], into: Path | None) -> Iterator[None]:
    """`py-spy record` of each process (by name) while the block runs, as raw collapsed stacks
    in `into`/<name>.txt; nothing when `into` is None."""
    if into is None:
        yield
        return
    into.mkdir(parents=True, exist_ok=True)
    spies = []
    for name, pid in pids.items():
        output = str(into / f"{name}.txt")
        command = [str(BIN / "py-spy"), "record", "--pid", str(pid), "--rate", "50"]
        command += ["--nonblocking", "--format", "raw", "--output", output]
        spies.append(
            subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        )
    try:
        yield
    finally:
        for spy in spies:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=60)
