"""The burst and steady-state halves of `scale.py`, each against a fresh sandbox with enough
simulated nodes: the bare client's Services and pods, and the same pods through the operator."""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import Any

from kubesandbox.testing import RunningSandbox, start_sandbox
from scale_restart import restarted, taken_over
from scale_support import (
    NAMESPACE,
    NODES_PER_JOB,
    Client,
    PodCount,
    all_running,
    cpu_of,
    following,
    job_body,
    job_children,
    operator,
    profiled,
    rss_mb,
    usage,
)

REPO = Path(__file__).resolve().parents[1]
CHUNK = 1000
"""Objects per chunk of the creation-rate comparison (first vs last)."""
PODS_PER_NODE = 100
"""Simulated nodes are made for this many pods each (a node holds 110, as a kubelet's)."""


def simulated_nodes(jobs: int) -> tuple[str, str]:
    """The sandbox option for enough simulated nodes to hold every pod of `jobs` jobs."""
    return "--simulated-nodes", str(max(4, -(-jobs * NODES_PER_JOB // PODS_PER_NODE)))


def rates(times: list[float], start: float, chunk: int) -> list[float]:
    """Objects per second over each `chunk` consecutive creations (at most half of them), the
    last chunk being the last `chunk` creations (`times`: when each returned, in order;
    `start`: when the first was sent)."""
    ends = [*range(chunk - 1, len(times) - 1, chunk), len(times) - 1]
    if len(ends) > 1 and ends[-1] - ends[-2] < chunk:
        ends.pop(-2)  # the last chunk overlaps the one before: keep it whole
    out = []
    for end in ends:
        before = times[end - chunk] if end >= chunk else start
        out.append(chunk / max(times[end] - before, 1e-9))
    return out


async def _bare(sandbox: RunningSandbox, jobs: int, concurrency: int) -> dict[str, Any]:
    client = Client(sandbox, concurrency)
    await client.namespace()
    objs = [c for i in range(jobs) for c in job_children(f"job-{i}")]
    count = PodCount(jobs * NODES_PER_JOB)
    assert sandbox.pid is not None
    try:
        async with following(client, count):
            with cpu_of(sandbox.pid) as cpu:
                start = time.monotonic()
                done = await client.create_all(objs)
                await all_running(count)
    finally:
        await client.close()
    size = min(CHUNK, len(objs) // 2) or 1
    chunks = rates(done, start, size)
    return {
        "objects": len(objs),
        "create_seconds": done[-1] - start,
        "chunk": size,
        "chunk_rates": chunks,
        "first_rate": chunks[0],
        "last_rate": chunks[-1],
        "all_running_seconds": count.when(count.running) - start,
        "sandbox_cpu_seconds": cpu[0],
    }


def bare(args: argparse.Namespace, state: Path) -> dict[str, Any]:
    """The bare client creates N Services + 4N pods at once: its creation rates and the time
    until all pods run."""
    with start_sandbox(state, *simulated_nodes(args.jobs)) as sandbox:
        return asyncio.run(_bare(sandbox, args.jobs, args.concurrency))


async def _all_jobs_running(client: Client, jobs: int) -> None:
    path = f"/apis/bigmodel.dev/v1alpha1/namespaces/{NAMESPACE}/bigmodeljobs"
    while True:
        items = (await client.request("GET", path))["items"]
        if sum((j.get("status") or {}).get("phase") == "Running" for j in items) >= jobs:
            return
        await asyncio.sleep(1)


async def _through_operator(
    sandbox: RunningSandbox, args: argparse.Namespace, pid: int, steady: bool, profile: Path | None
) -> dict[str, Any]:
    client = Client(sandbox, args.concurrency)
    out: dict[str, Any] = {"idle": vars(await usage(pid, args.idle_window))}
    count = PodCount(args.jobs * NODES_PER_JOB)
    assert sandbox.pid is not None
    processes = {"operator": pid, "sandbox": sandbox.pid}
    try:
        async with following(client, count):
            with (
                profiled(processes, profile),
                cpu_of(sandbox.pid) as sandbox_cpu,
                cpu_of(pid) as operator_cpu,
            ):
                start = time.monotonic()
                await client.create_all([job_body(f"job-{i}") for i in range(args.jobs)])
                await all_running(count)
        out |= {
            "all_running_seconds": count.when(count.running) - start,
            "sandbox_cpu_seconds": sandbox_cpu[0],
            "operator_cpu_seconds": operator_cpu[0],
            "rss_mb_burst": rss_mb(pid),
        }
        if steady:
            await asyncio.wait_for(_all_jobs_running(client, args.jobs), 3600)
            out["settled_seconds"] = time.monotonic() - start
            await asyncio.sleep(args.settle)
            out["steady"] = vars(await usage(pid, args.window))
    finally:
        await client.close()
    return out


def through_operator(
    args: argparse.Namespace,
    state: Path,
    steady: bool,
    profile: Path | None = None,
    restart: bool = False,
    takeover: bool = False,
    source: Path | None = None,
) -> dict[str, Any]:
    """N BigModelJobs created at once with the operator running (`source`: another
    checkout's, see `operator`): the time until all their pods run, then (with `steady`)
    the operator's cost once every job is Running, (with `takeover` too) a standby's taking
    over from it, killed, and (with `restart` too) a fresh operator's catching up with them
    (`scale_restart`)."""
    with start_sandbox(state, *simulated_nodes(args.jobs)) as sandbox:
        sandbox.kubectl("apply", "-f", str(REPO / "crds"))
        # before the operator: kopf misses a namespace created while it starts (between its
        # first listing of namespaces and the watch that follows)
        sandbox.kubectl("create", "namespace", NAMESPACE)
        with operator(sandbox, state / "operator.log", source) as running:
            out = asyncio.run(_through_operator(sandbox, args, running.pid, steady, profile))
            out["liveness"] = {str(code): n for code, n in sorted(running.liveness.items())}
            if steady and takeover:
                log = state / "operator-standby.log"
                out["takeover"] = taken_over(sandbox, args.jobs, running, log)
        if steady and restart:
            out["restart"] = restarted(sandbox, args.jobs, state / "operator-restart.log")
        return out


def alternate(args: argparse.Namespace, state: Path) -> list[dict[str, Any]]:
    """`args.rounds` rounds of the bare client, then the baseline operator's burst (with
    `--baseline-operator`), then the operator (the steady state in the last round only):
    alternating, so that all see the same machine load."""
    rounds = []
    for i in range(args.rounds):
        here = state / f"round-{i}"
        result = {"bare": bare(args, here / "bare")}
        if args.baseline_operator is not None and args.scenarios & {"burst", "steady"}:
            source = args.baseline_operator
            result["baseline"] = through_operator(args, here / "baseline", False, source=source)
        if args.scenarios & {"burst", "steady"}:
            last = i == args.rounds - 1
            steady = last and "steady" in args.scenarios
            profile = args.py_spy if last else None
            restart = last and "restart" in args.scenarios
            takeover = last and "takeover" in args.scenarios
            result["operator"] = through_operator(
                args, here / "operator", steady, profile, restart, takeover
            )
        rounds.append(result)
    return rounds
