"""T and S three ways, against a real Prometheus: the operator's status (`observe()`), the
operator's exported series as Prometheus scraped them, and the chart's recording rules over
the pods' own series. Node pods are the runtime's real `/metrics` servers fed through the
pod's publish path (per-rank stats files) with known step times.

Built to be extended: the sandbox version swaps `node_endpoints` for the demo job's pods.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import prometheus_client
import pytest
import yaml
from prometheus_client import CollectorRegistry

from bigmodel.api import JOB_KIND
from bigmodel.runtime.exposition import render
from bigmodel.runtime.server import MetricsServer
from bigmodel.runtime.shared_stats import StatsFile, read_ranks
from bigmodel.runtime.stats import RankStats
from bigmodel.runtime.stats import observe as observe_step
from bigmodel.telemetry.aggregate import StragglerPolicy
from bigmodel.telemetry.collect import Target, new_session
from bigmodel.telemetry.export import OperatorMetrics
from bigmodel.telemetry.observe import Observation, TelemetryState, node_target, observe
from bigmodel.telemetry.readings import MissingReason
from kubesandbox.testing import free_port

pytestmark = pytest.mark.integration

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
RULES = Path(__file__).resolve().parents[2] / "charts/bigmodel-operator/files/prometheus-rules.yaml"
NAMESPACE, JOB_NAME = "ml", "demo"
# Node rank -> its local ranks' latest step seconds; T_i is the slowest local rank's.
STEP_SECONDS = {0: (0.2, 0.18), 1: (0.25, 0.2), 2: (0.5, 0.3)}
DEAD_RANK = 3  # a node whose endpoint refuses connections: missing, never zero
POLICY = StragglerPolicy(threshold=0.75, window=3)
REL = 1e-12  # Prometheus and Python may add in another order: equal to the last bits


@dataclass(frozen=True)
class NodeEndpoint:
    rank: int
    pod: str
    port: int


def node_page(paths: Mapping[int, Path]) -> Callable[[], str]:
    """What local rank 0 serves: its node's local ranks' stats files, rendered."""
    return lambda: render(read_ranks(paths))


@pytest.fixture
def node_endpoints(tmp_path: Path) -> Iterator[list[NodeEndpoint]]:
    """One runtime metrics server per node, rendering its local ranks' stats files (the
    files each local rank's StepTimer publishes to), as local rank 0 does in a pod."""
    with contextlib.ExitStack() as stack:
        endpoints = []
        for rank, seconds in STEP_SECONDS.items():
            paths = {lr: tmp_path / f"node{rank}-rank{lr}" for lr in range(len(seconds))}
            for local_rank, step in enumerate(seconds):
                stats_file = StatsFile(paths[local_rank])
                stack.callback(stats_file.close)
                stats = RankStats()
                for _ in range(5):  # five steps, the latest of `step` seconds
                    stats = observe_step(stats, step)
                stats_file.write(stats)
            server = MetricsServer("127.0.0.1", 0, node_page(paths))
            stack.callback(server.close)
            endpoints.append(NodeEndpoint(rank, f"{JOB_NAME}-node-{rank}", server.port))
        endpoints.append(NodeEndpoint(DEAD_RANK, f"{JOB_NAME}-node-{DEAD_RANK}", free_port()))
        yield endpoints


@pytest.fixture
def operator_metrics() -> Iterator[tuple[OperatorMetrics, int]]:
    """The operator's metrics in their own registry, served over HTTP as main.py does."""
    metrics = OperatorMetrics(CollectorRegistry())
    port = free_port()
    server, thread = prometheus_client.start_http_server(port, "127.0.0.1", metrics.registry)
    yield metrics, port
    server.shutdown()
    server.server_close()
    thread.join(5)


class Prometheus:
    """A real Prometheus process with our rules, queried over its HTTP API."""

    def __init__(self, url: str, session: aiohttp.ClientSession) -> None:
        self.url, self.session = url, session

    async def query(self, promql: str) -> list[dict[str, Any]]:
        async with self.session.get(f"{self.url}/api/v1/query", params={"query": promql}) as r:
            body = await r.json()
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    async def values(self, promql: str, key: str, want: int) -> dict[str, float]:
        """`label key -> value` of `promql`, once it has `want` series (scrapes and rule
        evaluations take a few seconds to land; gives up after a minute)."""
        deadline = time.monotonic() + 60
        while True:
            result = await self.query(promql)
            if len(result) >= want or time.monotonic() > deadline:
                return {r["metric"].get(key, ""): float(r["value"][1]) for r in result}
            await asyncio.sleep(0.5)


def prometheus_config(operator_port: int, nodes: Sequence[NodeEndpoint]) -> dict[str, Any]:
    """Scrape the operator (keeping its `namespace` labels: honor_labels) and the node pods
    with the labels the chart's PodMonitor gives them."""
    pods = [
        {
            "targets": [f"127.0.0.1:{node.port}"],
            "labels": {
                "namespace": NAMESPACE,
                "pod": node.pod,
                "bigmodel_dev_job": JOB_NAME,
                "bigmodel_dev_node_rank": str(node.rank),
            },
        }
        for node in nodes
    ]
    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {
                "job_name": "bigmodel-operator",
                "honor_labels": True,
                "static_configs": [{"targets": [f"127.0.0.1:{operator_port}"]}],
            },
            {"job_name": "bigmodel-pods", "static_configs": pods},
        ],
    }


def start_prometheus(
    tmp_path: Path, operator_port: int, nodes: Sequence[NodeEndpoint]
) -> tuple[subprocess.Popen[bytes], str]:
    """Start /usr/bin/prometheus on a free port, logging to tmp_path; returns it and its URL."""
    if not Path(PROMETHEUS).exists():
        pytest.skip("prometheus not installed (Debian package `prometheus`)")
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump(prometheus_config(operator_port, nodes)))
    port = free_port()
    with (tmp_path / "prometheus.log").open("w") as log:
        process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return process, f"http://127.0.0.1:{port}"


@pytest.fixture
async def prometheus(
    tmp_path: Path,
    node_endpoints: list[NodeEndpoint],
    operator_metrics: tuple[OperatorMetrics, int],
) -> AsyncIterator[Prometheus]:
    """A Prometheus scraping the operator and the nodes, ready to answer queries."""
    process, url = start_prometheus(tmp_path, operator_metrics[1], node_endpoints)
    try:
        async with aiohttp.ClientSession() as session:
            deadline = time.monotonic() + 60
            while True:
                assert process.poll() is None, f"prometheus exited: see {tmp_path}/prometheus.log"
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"{url}/-/ready") as response:
                        if response.status == 200:
                            break
                assert time.monotonic() < deadline, "prometheus not ready in 60 s"
                await asyncio.sleep(0.2)
            yield Prometheus(url, session)
    finally:
        process.terminate()
        process.wait(30)


async def observe_rounds(
    metrics: OperatorMetrics, nodes: Sequence[NodeEndpoint], rounds: int
) -> Observation:
    """`rounds` collection rounds of the demo job, as the job daemon runs them."""
    targets: list[Target] = [node_target(n.rank, n.pod, "127.0.0.1", n.port) for n in nodes]
    state = TelemetryState()
    async with new_session() as session:
        for _ in range(rounds):
            obs = await observe(
                JOB_KIND, NAMESPACE, JOB_NAME, targets, POLICY, state, session, metrics=metrics
            )
            state = obs.state
    return obs


def by_rank(values: Mapping[str, float]) -> dict[str, float]:
    return dict(sorted(values.items()))


async def test_operator_status_exported_series_and_recording_rules_agree(
    prometheus: Prometheus,
    node_endpoints: list[NodeEndpoint],
    operator_metrics: tuple[OperatorMetrics, int],
) -> None:
    obs = await observe_rounds(operator_metrics[0], node_endpoints, rounds=POLICY.window)
    status = obs.telemetry
    expected_times = {str(rank): max(steps) for rank, steps in STEP_SECONDS.items()}
    assert status["n"] == len(STEP_SECONDS)
    assert status["totalTaskSeconds"] == pytest.approx(sum(expected_times.values()))
    assert status["stragglers"] == [f"{JOB_NAME}-node-2"]
    assert obs.scrapes[str(DEAD_RANK)].reason is MissingReason.CONNECTION

    ours = f'{{namespace="{NAMESPACE}",kind="{JOB_KIND}",name="{JOB_NAME}"}}'
    pods = f'{{namespace="{NAMESPACE}",bigmodel_dev_job="{JOB_NAME}"}}'
    # Wait until Prometheus has scraped every node and evaluated the rules over all of them
    # (a rule evaluated between the first scrapes of two nodes sees only some).
    n = len(STEP_SECONDS)
    await prometheus.values(f"bigmodel_nodes{ours} == {n}", "name", 1)
    await prometheus.values(f"bigmodel:job_nodes:count{pods} == {n}", "bigmodel_dev_job", 1)

    # 1. The operator's series, scraped by Prometheus, equal its status.
    total = await prometheus.values(f"bigmodel_task_seconds{ours}", "name", 1)
    quality = await prometheus.values(f"bigmodel_service_quality{ours}", "name", 1)
    assert total[JOB_NAME] == pytest.approx(status["totalTaskSeconds"], rel=REL)
    assert quality[JOB_NAME] == pytest.approx(status["serviceQuality"], rel=REL)
    node_seconds = await prometheus.values(f"bigmodel_node_task_seconds{ours}", "node", 3)
    assert by_rank(node_seconds) == pytest.approx(expected_times, rel=REL)

    # 2. The recording rules over the pods' own series give the same T, S, n and r_i.
    job = "bigmodel_dev_job"
    rule_total = await prometheus.values(f"bigmodel:job_task_seconds:sum{pods}", job, 1)
    rule_quality = await prometheus.values(f"bigmodel:job_service_quality:avg{pods}", job, 1)
    rule_nodes = await prometheus.values(f"bigmodel:job_nodes:count{pods}", job, 1)
    assert rule_total[JOB_NAME] == pytest.approx(status["totalTaskSeconds"], rel=REL)
    assert rule_quality[JOB_NAME] == pytest.approx(status["serviceQuality"], rel=REL)
    assert rule_nodes[JOB_NAME] == status["n"]
    rule_speed = await prometheus.values(
        f"bigmodel:node_relative_speed:ratio{pods}", "bigmodel_dev_node_rank", 3
    )
    assert by_rank(rule_speed) == pytest.approx(dict(obs.summary.relative_speed), rel=REL)

    # 3. The dead node is down for Prometheus too, and counted nowhere.
    up = await prometheus.values('up{job="bigmodel-pods"}', "bigmodel_dev_node_rank", 4)
    assert up == {"0": 1.0, "1": 1.0, "2": 1.0, str(DEAD_RANK): 0.0}
