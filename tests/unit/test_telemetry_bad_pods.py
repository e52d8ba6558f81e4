"""A telemetry round over pods that answer slowly, with garbage, with huge pages, or not at
all: each is missing with its reason, never a zero T_i, and T and S are of the pod that
answered (`support.badpods`; `benchmarks/chaos.py telemetry` measures the round's time)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from bigmodel.api import JOB_KIND
from bigmodel.telemetry.aggregate import StragglerPolicy
from bigmodel.telemetry.collect import ScrapeLimits, new_session
from bigmodel.telemetry.export import OperatorMetrics
from bigmodel.telemetry.observe import Observation, TelemetryState, observe
from support.badpods import EXPECTED, GOOD_SECONDS, BadPods


async def one_round(
    kinds: list[str], scrape_seconds: float, metrics: OperatorMetrics
) -> tuple[BadPods, Observation]:
    """The bad pods of `kinds` (keys "0", "1", ... in order), and one round over them."""
    pods = await BadPods().start(kinds)
    try:
        async with new_session() as session:
            seen = await observe(
                JOB_KIND,
                "ns",
                "job",
                pods.targets,
                StragglerPolicy(),
                TelemetryState(),
                session,
                limits=ScrapeLimits(timeout=scrape_seconds),
                metrics=metrics,
            )
    finally:
        await pods.close()
    return pods, seen


async def test_each_bad_pod_is_missing_with_its_reason_and_never_counted_as_zero() -> None:
    metrics = OperatorMetrics(CollectorRegistry())
    pods, seen = await one_round(list(EXPECTED), 1.0, metrics)
    assert {pods.kinds[key]: scrape.reason for key, scrape in seen.scrapes.items()} == EXPECTED
    assert (seen.telemetry["n"], seen.summary.total) == (1, GOOD_SECONDS)
    assert [n["taskSeconds"] for n in seen.telemetry["perNode"]] == [GOOD_SECONDS]
    exported = {
        sample.labels["node"]: sample.value
        for family in metrics.registry.collect()
        if family.name == "bigmodel_node_task_seconds"
        for sample in family.samples
    }
    assert exported == {"0": GOOD_SECONDS}


async def test_a_pod_that_trickles_its_page_forever_is_cut_at_the_scrape_timeout() -> None:
    _, seen = await one_round(["trickle", "good"], 0.5, OperatorMetrics(CollectorRegistry()))
    trickled = seen.scrapes["0"]
    assert trickled.reason is not None and "no answer" in trickled.detail
    assert seen.scrapes["1"].value == GOOD_SECONDS
