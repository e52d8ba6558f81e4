"""What a round writes: status.telemetry, the StragglerDetected condition, events, and the
`observe()` round that produces them from real HTTP endpoints."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from bigmodel.api import Condition, ConditionStatus, ConditionType, Reason
from bigmodel.api.telemetry import TelemetrySpec, TelemetrySummary
from bigmodel.runtime.exposition import NODE_STEP_SECONDS
from bigmodel.telemetry.aggregate import StragglerPolicy, StragglerState, summarize
from bigmodel.telemetry.collect import MissingReason, Target, new_session
from bigmodel.telemetry.export import JOB, TelemetryMetrics
from bigmodel.telemetry.observe import (
    FIELD_MANAGER,
    TelemetryState,
    node_target,
    observe,
    policy_from_spec,
    target_from_pod,
)
from bigmodel.telemetry.serving import TokenRound
from bigmodel.telemetry.status import (
    MAX_NAMED,
    rate_text,
    seconds_text,
    straggler_condition,
    straggler_events,
    telemetry_json,
    telemetry_summary,
)

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def telemetry_status(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """`status.telemetry` as written for the round."""
    return telemetry_json(telemetry_summary(*args, **kwargs))


POLICY = StragglerPolicy(threshold=0.75, window=2)


def pods(n: int) -> dict[str, str]:
    return {str(rank): f"demo-node-{rank}" for rank in range(n)}


def flagged(*keys: str, speed: float = 0.5) -> StragglerState:
    return StragglerState(dict.fromkeys(keys, (speed, speed)), frozenset(keys))


# --- status.telemetry ------------------------------------------------------------------------


def test_status_lists_t_s_slowest_and_every_node_slowest_first() -> None:
    times: dict[str, float | None] = {"0": 0.2, "1": 0.5, "2": 0.25, "3": None}
    status = telemetry_status(summarize(times), times, {"1"}, pods(4), NOW)
    assert status == {
        "n": 3,
        "totalTaskSeconds": pytest.approx(0.95),
        "serviceQuality": pytest.approx((5 + 2 + 4) / 3),
        "slowestNode": "demo-node-1",
        "stragglers": ["demo-node-1"],
        "stragglerDetails": [
            {
                "name": "demo-node-1",
                "cause": "Unknown",
                "detail": "",
                "excessSeconds": 0.0,
                "since": "2026-11-28T12:00:00Z",
            }
        ],
        "updatedAt": "2026-11-28T12:00:00Z",
        "perNode": [
            {"name": "demo-node-1", "taskSeconds": 0.5},
            {"name": "demo-node-2", "taskSeconds": 0.25},
            {"name": "demo-node-0", "taskSeconds": 0.2},
        ],
        "run": {
            "rounds": 1,
            "meanTotalTaskSeconds": pytest.approx(0.95),
            "meanServiceQuality": pytest.approx((5 + 2 + 4) / 3),
        },
        "readable": {"total": "950ms", "quality": "3.67/s"},
    }
    TelemetrySummary.model_validate(status)  # the CRD's own model accepts it


def test_a_straggler_keeps_the_start_of_its_streak_until_it_recovers() -> None:
    times: dict[str, float | None] = {"0": 0.2, "1": 0.5}
    first = telemetry_summary(summarize(times), times, {"1"}, pods(2), NOW)
    later = NOW + timedelta(seconds=30)
    kept = telemetry_summary(summarize(times), times, {"1"}, pods(2), later, first)
    assert [(d.name, d.since) for d in kept.straggler_details] == [("demo-node-1", NOW)]
    cleared = telemetry_summary(summarize(times), times, set(), pods(2), later, kept)
    again = telemetry_summary(summarize(times), times, {"1"}, pods(2), later, cleared)
    assert cleared.straggler_details == []
    assert [d.since for d in again.straggler_details] == [later]


def test_an_llm_service_lists_ttft_and_tpot_beside_t_i() -> None:
    times: dict[str, float | None] = {"a": 0.5, "b": 1.0}
    tokens = TokenRound(95, {"a": 0.2, "b": 0.4}, {"b": 0.03})
    status = telemetry_status(
        summarize(times), times, (), {"a": "chat-a", "b": "chat-b"}, NOW, tokens=tokens
    )
    assert status["tokens"] == {
        "percentile": 95,
        "timeToFirstTokenSeconds": pytest.approx(0.3),
        "timePerOutputTokenSeconds": 0.03,
    }
    assert status["perNode"] == [
        {
            "name": "chat-b",
            "taskSeconds": 1.0,
            "timeToFirstTokenSeconds": 0.4,
            "timePerOutputTokenSeconds": 0.03,
        },
        {"name": "chat-a", "taskSeconds": 0.5, "timeToFirstTokenSeconds": 0.2},
    ]
    TelemetrySummary.model_validate(status)


def test_a_round_without_token_observations_keeps_the_last_ttft_and_tpot() -> None:
    times: dict[str, float | None] = {"a": 0.5}
    first = TelemetrySummary.model_validate(
        telemetry_status(
            summarize(times), times, (), {"a": "chat-a"}, NOW, tokens=TokenRound(90, {"a": 0.2})
        )
    )
    later = telemetry_status(
        summarize(times), times, (), {"a": "chat-a"}, NOW, first, tokens=TokenRound(90)
    )
    assert later["tokens"] == {"percentile": 90, "timeToFirstTokenSeconds": 0.2}


def test_per_node_lists_the_32_slowest_nodes_slowest_first() -> None:
    times: dict[str, float | None] = {str(i): 1.0 + i for i in range(40)}
    per_node = telemetry_status(summarize(times), times, (), pods(40), NOW)["perNode"]
    assert [entry["taskSeconds"] for entry in per_node] == [40.0 - i for i in range(32)]


def test_no_answer_leaves_t_and_s_out_never_zero() -> None:
    times: dict[str, float | None] = {"0": None}
    status = telemetry_status(summarize(times), times, (), pods(1), NOW)
    assert status == {
        "n": 0,
        "stragglers": [],
        "stragglerDetails": [],
        "updatedAt": "2026-11-28T12:00:00Z",
        "perNode": [],
    }


def test_a_round_without_answers_keeps_the_last_measurement_and_the_run() -> None:
    first: dict[str, float | None] = {"0": 0.5, "1": 1.0}
    before = telemetry_status(summarize(first), first, (), pods(2), NOW)
    later = NOW + timedelta(minutes=5)
    gone: dict[str, float | None] = {"0": None, "1": None}
    after = telemetry_status(
        summarize(gone), gone, (), pods(2), later, TelemetrySummary.model_validate(before)
    )
    assert after == before  # T, S, T_i and updatedAt of the last measurement


def test_the_run_means_t_and_s_over_the_rounds_that_measured() -> None:
    last = TelemetrySummary()
    for total in (1.0, None, 3.0, 2.0):  # None: a round without answers
        times: dict[str, float | None] = {"0": total}
        status = telemetry_status(summarize(times), times, (), pods(1), NOW, last)
        last = TelemetrySummary.model_validate(status)
    assert last.run is not None
    assert last.run.rounds == 3
    assert last.run.mean_total_task_seconds == pytest.approx(2.0)
    assert last.run.mean_service_quality == pytest.approx((1 + 1 / 3 + 1 / 2) / 3)
    assert last.total_task_seconds == 2.0


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(1234.5, "1234s"), (123.4, "123s"), (12.345, "12.3s"), (1.0, "1s"), (0.4123, "412ms"),
     (0.0004123, "0.412ms")],
)  # fmt: skip
def test_t_reads_with_three_digits_and_a_unit(seconds: float, text: str) -> None:
    assert seconds_text(seconds) == text


@pytest.mark.parametrize(
    ("rate", "text"),
    [(2434.2, "2434/s"), (24.34, "24.3/s"), (2.4342, "2.43/s"), (0.0412, "0.0412/s")],
)
def test_s_reads_with_three_digits_and_a_unit(rate: float, text: str) -> None:
    assert rate_text(rate) == text


def test_stragglers_are_listed_in_rank_order() -> None:
    times: dict[str, float | None] = {str(i): 1.0 for i in range(12)}
    status = telemetry_status(summarize(times), times, {"10", "2", "9"}, pods(12), NOW)
    assert status["stragglers"] == ["demo-node-2", "demo-node-9", "demo-node-10"]


# --- the condition ---------------------------------------------------------------------------


def test_condition_true_names_ranks_pods_and_relative_speeds() -> None:
    state = StragglerState({"0": (1.0, 1.0), "3": (0.6, 0.52)}, frozenset({"3"}))
    condition = straggler_condition(state, POLICY, pods(4), None, NOW, generation=7)
    assert (condition.type, condition.status, condition.reason) == (
        ConditionType.STRAGGLER_DETECTED,
        ConditionStatus.TRUE,
        Reason.SLOW_NODES,
    )
    assert condition.message == (
        "1 of 4 nodes below 0.75 of the fastest node's speed for 2 consecutive observations: "
        "node 3 (pod demo-node-3) at 0.52 of the fastest node's speed"
    )
    assert (condition.last_transition_time, condition.observed_generation) == (NOW, 7)


def test_condition_false_says_no_stragglers() -> None:
    condition = straggler_condition(StragglerState(), POLICY, pods(2), None, NOW)
    assert (condition.status, condition.reason) == (ConditionStatus.FALSE, Reason.NO_STRAGGLERS)


def test_transition_time_is_kept_while_the_status_holds_and_moves_when_it_flips() -> None:
    first = straggler_condition(flagged("1"), POLICY, pods(2), None, NOW)
    later = NOW + timedelta(minutes=5)
    same = straggler_condition(flagged("1", speed=0.4), POLICY, pods(2), first, later)
    flipped = straggler_condition(StragglerState(), POLICY, pods(2), same, later)
    assert same.last_transition_time == NOW
    assert flipped.last_transition_time == later


def test_a_straggler_without_recent_values_is_named_as_such() -> None:
    state = StragglerState({"1": ()}, frozenset({"1"}))
    message = straggler_condition(state, POLICY, pods(2), None, NOW).message
    assert message.endswith("node 1 (pod demo-node-1) no recent T_i")


def test_long_lists_of_stragglers_are_cut_in_messages() -> None:
    keys = [str(i) for i in range(MAX_NAMED + 5)]
    message = straggler_condition(flagged(*keys), POLICY, pods(40), None, NOW).message
    assert message.startswith(f"{MAX_NAMED + 5} of 40 nodes")
    assert message.endswith("and 5 more")
    assert "pod demo-node-14" not in message


def test_replicas_keyed_by_pod_name_are_named_once() -> None:
    state = flagged("web-7d9c")
    replicas = {"web-7d9c": "web-7d9c"}
    condition = straggler_condition(state, POLICY, replicas, None, NOW, unit="replica")
    assert "replica web-7d9c at 0.50 of the fastest replica's speed" in condition.message


# --- events ----------------------------------------------------------------------------------


def test_a_new_straggler_is_a_warning_event() -> None:
    (event,) = straggler_events(set(), flagged("2"), pods(3))
    assert (event.type, event.reason) == ("Warning", Reason.STRAGGLER_DETECTED)
    assert "node 2 (pod demo-node-2) at 0.50" in event.message


def test_no_change_no_event() -> None:
    assert straggler_events({"2"}, flagged("2"), pods(3)) == ()


def test_recovery_events_say_cleared_once_none_is_left() -> None:
    (partial,) = straggler_events({"1", "2"}, flagged("2"), pods(3))
    (cleared,) = straggler_events({"2"}, StragglerState(), pods(3))
    assert (partial.type, partial.reason) == ("Normal", Reason.STRAGGLER_RECOVERED)
    assert (cleared.type, cleared.reason) == ("Normal", Reason.STRAGGLERS_CLEARED)
    assert "node 2 (pod demo-node-2)" in cleared.message


# --- policy and resume -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("window_seconds", "interval", "window"), [(60, 15, 4), (5, 15, 1), (61, 20, 3)]
)
def test_policy_window_counts_the_rounds_that_fit_in_window_seconds(
    window_seconds: int, interval: float, window: int
) -> None:
    spec = TelemetrySpec(straggler_threshold=0.5, window_seconds=window_seconds)
    assert policy_from_spec(spec, interval) == StragglerPolicy(threshold=0.5, window=window)


def test_resume_keeps_the_condition_and_flags_listed_stragglers() -> None:
    condition = straggler_condition(flagged("1"), POLICY, pods(2), None, NOW)
    status = {
        "conditions": [
            {
                "type": "Running",
                "status": "True",
                "reason": "X",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            },
            condition.model_dump(mode="json", by_alias=True),
        ],
        "telemetry": {"stragglers": ["demo-node-1"]},
    }
    targets = [node_target(r, f"demo-node-{r}", "10.0.0.1", 9400) for r in range(2)]
    state = TelemetryState.resume(status, targets)
    assert state.condition == condition
    assert state.stragglers.flagged == {"1"}
    # Without fresh values the node stays flagged: no False-then-True flap after a restart.
    assert straggler_events(state.stragglers.flagged, state.stragglers, pods(2)) == ()


def pod_body(phase: str = "Running", ip: str | None = "10.1.2.3", **meta: object) -> dict[str, Any]:
    metadata = {"name": "demo-node-1", "labels": {"bigmodel.dev/node-rank": "1"}, **meta}
    return {"metadata": metadata, "status": {"phase": phase, "podIP": ip}}


def test_a_running_node_pod_is_a_target_at_its_ip_and_metrics_port() -> None:
    assert target_from_pod(pod_body(), 9400) == Target(
        "1", "demo-node-1", "http://10.1.2.3:9400/metrics"
    )


@pytest.mark.parametrize(
    "body",
    [
        pod_body(phase="Pending"),
        pod_body(ip=None),
        pod_body(deletionTimestamp="2026-11-28T12:00:00Z"),
        pod_body(labels={}),
    ],
)
def test_pods_that_cannot_be_scraped_are_no_targets(body: dict[str, Any]) -> None:
    assert target_from_pod(body, 9400) is None


def test_resume_from_an_empty_status() -> None:
    assert TelemetryState.resume(None, []) == TelemetryState()


# --- observe(): one round over HTTP ----------------------------------------------------------


@pytest.fixture
async def nodes() -> AsyncIterator[Callable[[dict[int, float | None]], list[Target]]]:
    """Serve node pages on loopback with settable T_i (None: no step yet); returns targets."""
    times: dict[int, float | None] = {}

    async def metrics(request: web.Request) -> web.Response:
        value = times[int(request.match_info["rank"])]
        text = "" if value is None else f"{NODE_STEP_SECONDS} {value!r}\n"
        return web.Response(text=f"# TYPE {NODE_STEP_SECONDS} gauge\n{text}")

    app = web.Application()
    app.router.add_get("/{rank}/metrics", metrics)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]

    def targets(values: dict[int, float | None]) -> list[Target]:
        times.update(values)
        url = f"http://127.0.0.1:{port}"
        return [Target(str(r), f"demo-node-{r}", f"{url}/{r}/metrics") for r in sorted(values)]

    yield targets
    await runner.cleanup()


async def test_observe_flags_a_sustained_straggler_once_and_reports_missing_nodes(
    nodes: Callable[[dict[int, float | None]], list[Target]],
) -> None:
    targets = nodes({0: 0.2, 1: 0.25, 2: 0.5, 3: None})
    metrics = TelemetryMetrics(CollectorRegistry())
    state, rounds = TelemetryState(), []
    async with new_session() as session:
        for i in range(3):
            now = NOW + timedelta(seconds=15 * i)
            obs = await observe(
                JOB, "ns", "demo", targets, POLICY, state, session, metrics=metrics, now=now
            )
            state = obs.state
            rounds.append(obs)
    first, second, third = rounds
    assert first.condition.status is ConditionStatus.FALSE and first.events == ()
    assert second.condition.status is ConditionStatus.TRUE
    assert [e.reason for e in second.events] == [Reason.STRAGGLER_DETECTED]
    assert third.events == ()  # still flagged: no repeated event
    assert third.condition.last_transition_time == NOW + timedelta(seconds=15)
    assert third.telemetry["stragglers"] == ["demo-node-2"]
    assert third.telemetry["totalTaskSeconds"] == pytest.approx(0.95)
    assert third.scrapes["3"].reason is MissingReason.METRIC_ABSENT
    assert set(third.missing) == {"3"}


async def test_observe_reports_an_invalid_value_by_reason(
    nodes: Callable[[dict[int, float | None]], list[Target]],
) -> None:
    targets = nodes({0: 0.2, 1: 0.0})
    async with new_session() as session:
        obs = await observe(
            JOB,
            "ns",
            "demo",
            targets,
            POLICY,
            TelemetryState(),
            session,
            metrics=TelemetryMetrics(CollectorRegistry()),
        )
    assert obs.scrapes["1"].reason is MissingReason.INVALID
    assert obs.summary.invalid == ("1",)
    assert obs.telemetry["n"] == 1


async def test_status_patch_holds_only_what_telemetry_owns(
    nodes: Callable[[dict[int, float | None]], list[Target]],
) -> None:
    async with new_session() as session:
        obs = await observe(
            JOB,
            "ns",
            "demo",
            nodes({0: 0.2}),
            POLICY,
            TelemetryState(),
            session,
            metrics=TelemetryMetrics(CollectorRegistry()),
            generation=3,
        )
    patch = obs.status_patch()
    assert set(patch) == {"telemetry", "conditions"}
    (condition,) = patch["conditions"]
    assert Condition.model_validate(condition).type == ConditionType.STRAGGLER_DETECTED
    assert condition["observedGeneration"] == 3
    assert FIELD_MANAGER == "bigmodel-telemetry"
