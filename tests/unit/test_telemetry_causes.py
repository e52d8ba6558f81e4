"""Why a straggler is slow (`bigmodel.telemetry.causes`): one test per row of the decision
table, and properties: no cause without a flagged node, a uniform slowdown names no node."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bigmodel.api.telemetry import StragglerCause
from bigmodel.telemetry.aggregate import (
    StragglerPolicy,
    StragglerState,
    summarize,
    update_stragglers,
)
from bigmodel.telemetry.causes import (
    CPU_SHARE_RATIO,
    CPU_THROTTLED_SHARE,
    GPU_CLOCK_RATIO,
    GPU_THROTTLED_SHARE,
    MAJOR_FAULTS_PER_SECOND,
    MEMORY_PRESSURE_SHARE,
    SCHED_DELAY_SHARE,
    diagnose,
)
from bigmodel.telemetry.evidence import NodeEvidence

PEER = NodeEvidence(input_wait=0.01, compute=0.09, machine={"sched_delay": 0.02})
GPU_PEER = NodeEvidence(
    input_wait=0.01, compute=0.09, machine={"gpu_sm_clock_mhz": 1980.0, "gpu_throttled": 0.0}
)


def _node(input_wait: float = 0.01, compute: float = 0.09, **machine: float) -> NodeEvidence:
    return NodeEvidence(input_wait=input_wait, compute=compute, machine=machine)


def _cause(
    slow: NodeEvidence, peer: NodeEvidence = PEER, t: float = 0.2
) -> tuple[StragglerCause, str]:
    times = {"0": 0.1, "1": 0.1, "2": t}
    found = diagnose(times, {"0": peer, "1": peer, "2": slow}, flagged={"2"})
    assert set(found) == {"2"}
    assert found["2"].excess_seconds == pytest.approx(t - 0.1)
    return found["2"].cause, found["2"].detail


def test_input_wait_explaining_half_the_excess_is_the_input_pipeline() -> None:
    cause, detail = _cause(_node(input_wait=0.07, compute=0.13))
    assert cause is StragglerCause.INPUT_PIPELINE
    assert "input wait 0.06s over its peers' of 0.1s excess" in detail


def test_compute_with_throttle_time_is_a_throttled_gpu_naming_the_reasons() -> None:
    slow = _node(
        compute=0.19,
        gpu_sm_clock_mhz=1980.0,
        gpu_throttled=GPU_THROTTLED_SHARE + 0.1,
        gpu_throttle_reasons=0x40,
    )
    cause, detail = _cause(slow, GPU_PEER)
    assert cause is StragglerCause.GPU_THROTTLED
    assert "HwThermalSlowdown" in detail


def test_compute_with_a_lower_sm_clock_is_a_throttled_gpu() -> None:
    slow = _node(compute=0.19, gpu_sm_clock_mhz=1980.0 * GPU_CLOCK_RATIO, gpu_throttled=0.0)
    assert _cause(slow, GPU_PEER)[0] is StragglerCause.GPU_THROTTLED


@pytest.mark.parametrize("figure", [{"gpu_pcie_degraded": 1.0}, {"gpu_xid_errors": 2.0}])
def test_compute_with_a_degraded_link_or_new_xids_is_a_degraded_gpu(
    figure: Mapping[str, float],
) -> None:
    slow = _node(compute=0.19, gpu_sm_clock_mhz=1980.0, gpu_throttled=0.0, **figure)
    assert _cause(slow, GPU_PEER)[0] is StragglerCause.GPU_DEGRADED


@pytest.mark.parametrize(
    "figure",
    [
        {"sched_delay": 0.02 + SCHED_DELAY_SHARE},
        {"cpu_throttled": CPU_THROTTLED_SHARE},
    ],
)
def test_compute_with_cpu_starvation_is_the_host_cpu(figure: Mapping[str, float]) -> None:
    cause, detail = _cause(_node(compute=0.19, **figure))
    assert cause is StragglerCause.HOST_CPU
    assert "waited for a CPU" in detail


def test_on_a_busy_machine_a_far_smaller_cpu_share_is_the_host_cpu() -> None:
    busy = _node(sched_delay=0.8)  # peers run 20% of their runnable time
    share = CPU_SHARE_RATIO * 0.2 * 0.99
    assert _cause(_node(compute=0.19, sched_delay=1 - share), busy)[0] is StragglerCause.HOST_CPU
    near = _node(compute=0.19, sched_delay=0.85)  # 15%: not far enough below
    assert _cause(near, busy)[0] is StragglerCause.UNKNOWN


@pytest.mark.parametrize(
    "figure",
    [
        {"major_faults_per_second": MAJOR_FAULTS_PER_SECOND},
        {"memory_pressure": MEMORY_PRESSURE_SHARE},
        {"swap_pages_per_second": 500.0},
    ],
)
def test_compute_with_faults_swap_or_pressure_is_memory(figure: Mapping[str, float]) -> None:
    assert _cause(_node(compute=0.19, **figure))[0] is StragglerCause.MEMORY


def test_compute_with_nothing_else_wrong_is_unknown() -> None:
    cause, detail = _cause(_node(compute=0.19, sched_delay=0.05))
    assert cause is StragglerCause.UNKNOWN
    assert "no host or GPU evidence" in detail


def test_a_host_loaded_like_its_peers_does_not_explain_a_straggler() -> None:
    busy = _node(sched_delay=0.6, cpu_throttled=0.3)
    slow = _node(compute=0.19, sched_delay=0.6, cpu_throttled=0.3)
    assert _cause(slow, busy)[0] is StragglerCause.UNKNOWN


def test_an_excess_neither_input_nor_compute_explains_is_unknown() -> None:
    cause, detail = _cause(_node(input_wait=0.02, compute=0.1), t=0.3)
    assert cause is StragglerCause.UNKNOWN
    assert "over its peers'" in detail


def test_a_node_without_step_parts_is_unknown() -> None:
    cause, detail = _cause(NodeEvidence())
    assert (cause, detail) == (StragglerCause.UNKNOWN, "no step parts reported, of 0.1s excess")


def test_a_node_alone_or_not_above_its_peers_is_unknown_with_no_excess() -> None:
    alone = diagnose({"0": 0.2}, {}, {"0"})["0"]
    assert (alone.cause, alone.excess_seconds) == (StragglerCause.UNKNOWN, 0.0)
    level = diagnose({"0": 0.1, "1": 0.1}, {}, {"1"})["1"]
    assert (level.cause, level.excess_seconds) == (StragglerCause.UNKNOWN, 0.0)


def test_input_is_checked_before_the_machine() -> None:
    slow = _node(input_wait=0.11, compute=0.09, sched_delay=0.9)
    assert _cause(slow)[0] is StragglerCause.INPUT_PIPELINE


_times = st.dictionaries(
    st.sampled_from([str(i) for i in range(8)]), st.floats(0.001, 100.0), min_size=1
)
_evidence = st.builds(
    NodeEvidence,
    input_wait=st.none() | st.floats(0, 10),
    compute=st.none() | st.floats(0, 10),
    machine=st.dictionaries(
        st.sampled_from(["sched_delay", "cpu_throttled", "gpu_throttled", "memory_pressure"]),
        st.floats(0, 1),
    ),
)


@given(_times, st.dictionaries(st.sampled_from([str(i) for i in range(8)]), _evidence))
def test_no_cause_is_named_for_a_node_that_is_not_flagged(
    times: dict[str, float], evidence: dict[str, NodeEvidence]
) -> None:
    assert diagnose(times, evidence, flagged=set()) == {}
    flagged = set(list(times)[:1])
    assert set(diagnose(times, evidence, flagged)) == flagged


@given(
    st.integers(2, 8),
    st.floats(0.01, 1.0),
    st.floats(1.0, 20.0),
    _evidence,
    st.integers(1, 5),
)
def test_a_uniform_slowdown_never_names_a_node(
    nodes: int, step: float, factor: float, evidence: NodeEvidence, rounds: int
) -> None:
    policy = StragglerPolicy(window=rounds)
    state = StragglerState()
    for seconds in (step, step * factor):
        times = {str(i): seconds for i in range(nodes)}
        for _ in range(rounds):
            state = update_stragglers(state, summarize(times), policy)
        everyone = dict.fromkeys(times, evidence)
        assert state.flagged == frozenset()
        assert diagnose(times, everyone, state.flagged) == {}
        named = diagnose(times, everyone, set(times))  # even if asked: nothing stands out
        assert all(d.cause is StragglerCause.UNKNOWN for d in named.values())
