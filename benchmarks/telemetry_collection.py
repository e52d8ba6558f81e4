"""What one telemetry round costs the operator: scrape N node pods, aggregate, export.

Runs `bigmodel.telemetry.observe.observe()` (the call a job daemon makes each round) against
N simulated node pods and reports CPU seconds (`time.process_time`, this process only) and
wall seconds per round, for a small baseline job and a large one in the same run.

The pods are served by a separate process (so its CPU is not counted): one asyncio server
with one listening socket per node on its own loopback address (127.0.x.y, as pods have
distinct IPs), each serving a realistic page: `bigmodel.runtime.exposition.render` of 8 local
ranks with a loss, about 2.4 kB. `--connection close` answers as the runtime's pod server
does (HTTP/1.0, one connection per scrape: a TCP handshake every time); `keep-alive` lets
the client reuse connections (a server such as prometheus_client's or vLLM's).

    .venv/bin/python benchmarks/telemetry_collection.py            # 10 and 1,000 nodes
    .venv/bin/python benchmarks/telemetry_collection.py --nodes 1000 --rounds 20
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))

from prometheus_client import CollectorRegistry, generate_latest

from bigmodel.api import JOB_KIND
from bigmodel.runtime.exposition import render
from bigmodel.runtime.stats import RankStats, observe
from bigmodel.telemetry.aggregate import StragglerPolicy
from bigmodel.telemetry.collect import ScrapeLimits, Target, new_session, pod_url
from bigmodel.telemetry.export import OperatorMetrics
from bigmodel.telemetry.observe import TelemetryState
from bigmodel.telemetry.observe import observe as observe_round

LOCAL_RANKS = 8


def address(index: int) -> str:
    """A distinct loopback address per simulated pod (Linux routes 127.0.0.0/8 to lo)."""
    return f"127.0.{1 + index // 250}.{1 + index % 250}"


def node_page(rng: random.Random, straggler: bool) -> bytes:
    """A node pod's /metrics after 500 steps of ~0.2 s (0.5 s for a straggler)."""
    ranks = {}
    for rank in range(LOCAL_RANKS):
        stats = RankStats()
        for _ in range(500):
            stats = observe(stats, rng.lognormvariate(-1.6, 0.05) * (2.5 if straggler else 1))
        ranks[rank] = replace(stats, loss=2.0 + rng.random())
    return render(ranks).encode()


# --- the pods' side (a separate process) ----------------------------------------------------


class PageProtocol(asyncio.Protocol):
    """Answers each GET with the node's page; closes after it unless keep-alive."""

    def __init__(self, page: bytes, keep_alive: bool) -> None:
        status = b"HTTP/1.1 200 OK" if keep_alive else b"HTTP/1.0 200 OK"
        connection = b"keep-alive" if keep_alive else b"close"
        self.response = (
            status + b"\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
            b"Content-Length: " + str(len(page)).encode() + b"\r\n"
            b"Connection: " + connection + b"\r\n\r\n" + page
        )
        self.keep_alive = keep_alive
        self.buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            _, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            self.transport.write(self.response)
            if not self.keep_alive:
                self.transport.close()
                return


async def serve(nodes: int, keep_alive: bool, seed: int) -> None:
    """Listen for `nodes` pods, print their `ip:port` as one JSON line, serve until stdin
    closes."""
    loop = asyncio.get_running_loop()
    rng = random.Random(seed)
    # 50 distinct pages, page 7 a straggler's: 2% of a large job's nodes, 1 of a 10-node job.
    pages = [node_page(rng, straggler=(i == 7)) for i in range(min(nodes, 50))]
    endpoints = []
    for i in range(nodes):
        page = pages[i % len(pages)]
        server = await loop.create_server(
            functools.partial(PageProtocol, page, keep_alive), address(i), 0, backlog=64
        )
        endpoints.append(f"{address(i)}:{server.sockets[0].getsockname()[1]}")
    print(json.dumps({"endpoints": endpoints, "page_bytes": len(pages[0])}), flush=True)
    await loop.run_in_executor(None, sys.stdin.read)


# --- the operator's side (measured) ---------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(endpoints: list[str], rounds: int, limits: ScrapeLimits) -> dict[str, float]:
    """Run rounds of observe() over the endpoints; CPU and wall seconds per round."""
    targets = []
    for rank, endpoint in enumerate(endpoints):
        ip, port = endpoint.rsplit(":", 1)
        targets.append(Target(str(rank), f"bench-node-{rank}", pod_url(ip, int(port))))
    metrics = OperatorMetrics(CollectorRegistry())
    state, cpu, wall, missing = TelemetryState(), [], [], 0
    async with new_session() as session:
        for round_ in range(rounds + 1):  # round 0 warms up (imports, DNS-free connects)
            cpu0, wall0 = time.process_time(), time.perf_counter()
            obs = await observe_round(
                JOB_KIND,
                "bench",
                "bench",
                targets,
                StragglerPolicy(),
                state,
                session,
                limits=limits,
                metrics=metrics,
            )
            cpu1, wall1 = time.process_time(), time.perf_counter()
            state = obs.state
            if round_:
                cpu.append(cpu1 - cpu0)
                wall.append(wall1 - wall0)
                missing += len(obs.missing)
    cpu0 = time.process_time()
    exposition = generate_latest(metrics.registry)
    export_cpu = time.process_time() - cpu0
    return {
        "cpu_median": statistics.median(cpu),
        "cpu_p95": percentile(cpu, 0.95),
        "wall_median": statistics.median(wall),
        "wall_p95": percentile(wall, 0.95),
        "missing": missing,
        "n": obs.summary.n,
        "operator_scrape_cpu": export_cpu,
        "operator_page_bytes": len(exposition),
    }


Pods = tuple[subprocess.Popen[str], dict[str, object]]


def start_pods(nodes: int, keep_alive: bool, seed: int) -> Pods:
    mode = "keep-alive" if keep_alive else "close"
    process = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--serve",
            str(nodes),
            "--connection",
            mode,
            "--seed",
            str(seed),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    info: dict[str, object] = json.loads(process.stdout.readline())
    return process, info


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return f"{line.split(':', 1)[1].strip()} x {os.cpu_count()}"
    return platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--baseline", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=ScrapeLimits().concurrency)
    parser.add_argument("--connection", choices=["close", "keep-alive", "both"], default="both")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve, args.connection == "keep-alive", args.seed))
        return
    modes = ["close", "keep-alive"] if args.connection == "both" else [args.connection]
    limits = ScrapeLimits(concurrency=args.concurrency)
    print(f"# {datetime.now(UTC):%Y-%m-%d}, Python {platform.python_version()}, {cpu_model()}")
    print(f"# {' '.join(sys.argv)}; {args.rounds} rounds (+1 warm-up), {args.concurrency} at once")
    print(
        "| connection | nodes | CPU s/round p50 / p95 | wall s/round p50 / p95 | missing "
        "| operator /metrics render |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for mode in modes:
        for nodes in (args.baseline, args.nodes):
            process, info = start_pods(nodes, mode == "keep-alive", args.seed)
            try:
                endpoints = info["endpoints"]
                assert isinstance(endpoints, list)
                r = asyncio.run(measure(endpoints, args.rounds, limits))
            finally:
                assert process.stdin is not None
                process.stdin.close()
                process.wait(30)
            print(
                f"| {mode} | {nodes:,} | {r['cpu_median']:.4f} / {r['cpu_p95']:.4f} "
                f"| {r['wall_median']:.4f} / {r['wall_p95']:.4f} | {r['missing']:.0f} "
                f"| {r['operator_scrape_cpu'] * 1000:.1f} ms CPU, "
                f"{r['operator_page_bytes'] / 1024:.0f} kB |",
                flush=True,
            )
    print(f"# node page: {info['page_bytes']} bytes ({LOCAL_RANKS} local ranks)")


if __name__ == "__main__":
    main()
