"""A round names why each straggler is slow: pages rendered by the pod's own exposition
(`bigmodel.runtime.exposition`) are scraped over HTTP, and the cause reaches
status.telemetry.stragglerDetails, the condition, the event and the operator's series; a
job's slow network becomes its CommunicationSlow condition."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from bigmodel.api import JOB_KIND, SERVICE_KIND, ConditionStatus, ConditionType, Reason
from bigmodel.runtime.exposition import render
from bigmodel.runtime.machine import MachineSample
from bigmodel.runtime.stats import RankStats, StepCounts
from bigmodel.telemetry.aggregate import StragglerPolicy
from bigmodel.telemetry.collect import Target, new_session
from bigmodel.telemetry.export import OperatorMetrics
from bigmodel.telemetry.observe import Observation, TelemetryState, observe

NOW = datetime(2026, 12, 7, 5, 0, tzinfo=UTC)
POLICY = StragglerPolicy(threshold=0.75, window=2)
Pages = Callable[[dict[int, RankStats]], list[Target]]


def node(
    step: float, waited: float = 0.0, communicated: float = 0.01, **machine: float
) -> RankStats:
    counts = StepCounts()
    counts.add(step, waited)
    counts.add_communication(communicated)
    counts.machine = MachineSample(samples=10, **machine)  # type: ignore[arg-type]
    return counts.snapshot()


@pytest.fixture
async def pages() -> AsyncIterator[Pages]:
    """Serve each node's page, rendered from its (settable) statistics; returns targets."""
    stats: dict[int, RankStats] = {}

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(text=render({0: stats[int(request.match_info["rank"])]}))

    app = web.Application()
    app.router.add_get("/{rank}/metrics", metrics)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]

    def targets(values: dict[int, RankStats]) -> list[Target]:
        stats.update(values)
        url = f"http://127.0.0.1:{port}"
        return [Target(str(r), f"demo-node-{r}", f"{url}/{r}/metrics") for r in sorted(values)]

    yield targets
    await runner.cleanup()


async def _rounds(
    targets: list[Target],
    count: int,
    metrics: OperatorMetrics,
    state: TelemetryState | None = None,
    kind: str = JOB_KIND,
) -> list[Observation]:
    state = state or TelemetryState()
    seen = []
    async with new_session() as session:
        for i in range(count):
            now = NOW + timedelta(seconds=15 * i)
            obs = await observe(
                kind, "ns", "demo", targets, POLICY, state, session, metrics=metrics, now=now
            )
            state = obs.state
            seen.append(obs)
    return seen


async def test_a_straggler_waiting_for_input_is_named_everywhere(pages: Pages) -> None:
    targets = pages({0: node(0.1, 0.01), 1: node(0.1, 0.01), 2: node(0.3, 0.2)})
    registry = CollectorRegistry()
    first, second, third = await _rounds(targets, 3, OperatorMetrics(registry))
    assert first.telemetry["stragglerDetails"] == []
    (detail,) = second.telemetry["stragglerDetails"]
    assert detail["name"] == "demo-node-2"
    assert detail["cause"] == "InputPipeline"
    assert detail["excessSeconds"] == pytest.approx(0.2)
    assert "input wait 0.19s" in detail["detail"]
    assert detail["since"] == "2026-12-07T05:00:15Z"
    assert third.telemetry["stragglerDetails"][0]["since"] == detail["since"]  # its streak
    assert "InputPipeline (input wait" in second.condition.message
    (event,) = second.events
    assert event.reason == Reason.STRAGGLER_DETECTED and "InputPipeline" in event.message
    labels = {
        "namespace": "ns",
        "kind": JOB_KIND,
        "name": "demo",
        "node": "2",
        "cause": "InputPipeline",
    }
    assert registry.get_sample_value("bigmodel_node_straggler_cause", labels) == 1.0


async def test_a_host_starved_of_cpu_is_named_and_a_recovered_node_loses_its_detail(
    pages: Pages,
) -> None:
    slow = node(0.3, 0.01, sched_delay=0.5)
    targets = pages({0: node(0.1, 0.01, sched_delay=0.05), 1: node(0.1, 0.01), 2: slow})
    metrics = OperatorMetrics(CollectorRegistry())
    rounds = await _rounds(targets, 2, metrics)
    assert rounds[-1].telemetry["stragglerDetails"][0]["cause"] == "HostCpu"
    pages({2: node(0.1, 0.01)})
    later = await _rounds(targets, 2, metrics, rounds[-1].state)
    assert later[-1].telemetry["stragglers"] == []
    assert later[-1].telemetry["stragglerDetails"] == []


async def test_a_slow_network_is_the_jobs_condition_not_a_nodes_cause(pages: Pages) -> None:
    targets = pages({0: node(0.1, communicated=0.02), 1: node(0.1, communicated=0.02)})
    metrics = OperatorMetrics(CollectorRegistry())
    (before,) = await _rounds(targets, 1, metrics)
    assert before.communication is not None
    assert before.communication.status is ConditionStatus.FALSE
    pages({0: node(0.1, communicated=0.3), 1: node(0.1, communicated=0.3)})
    rounds = await _rounds(targets, 2, metrics, before.state)
    slow = rounds[-1]
    assert slow.communication is not None and slow.communication.status is ConditionStatus.TRUE
    assert "0.3s per step" in slow.communication.message
    assert [e.reason for e in slow.events] == [Reason.SLOW_COMMUNICATION]
    assert slow.telemetry["stragglers"] == []
    types = {c["type"] for c in slow.status_patch()["conditions"]}
    assert types == {ConditionType.STRAGGLER_DETECTED, ConditionType.COMMUNICATION_SLOW}
    resumed = TelemetryState.resume(
        {"conditions": slow.status_patch()["conditions"], "telemetry": slow.telemetry}, targets
    )
    assert resumed.communication_condition == slow.communication


async def test_a_service_has_no_communication_condition(pages: Pages) -> None:
    targets = pages({0: node(0.1), 1: node(0.1)})
    (obs,) = await _rounds(targets, 1, OperatorMetrics(CollectorRegistry()), kind=SERVICE_KIND)
    assert obs.communication is None
    assert [c["type"] for c in obs.status_patch()["conditions"]] == ["StragglerDetected"]


async def test_a_restarted_operator_keeps_when_a_straggler_was_first_flagged(
    pages: Pages,
) -> None:
    targets = pages({0: node(0.1), 1: node(0.1), 2: node(0.4)})
    metrics = OperatorMetrics(CollectorRegistry())
    rounds = await _rounds(targets, 2, metrics)
    status = {
        "conditions": rounds[-1].status_patch()["conditions"],
        "telemetry": rounds[-1].telemetry,
    }
    resumed = TelemetryState.resume(status, targets)
    (after,) = await _rounds(targets, 1, metrics, resumed)
    (detail,) = after.telemetry["stragglerDetails"]
    assert detail["since"] == "2026-12-07T05:00:15Z"
    assert detail["cause"] == "Unknown"  # compute only, nothing else wrong
