"""The pod's /metrics text: valid Prometheus exposition with the contracted names."""

from __future__ import annotations

from dataclasses import replace

from prometheus_client.parser import text_string_to_metric_families

from bigmodel.runtime.exposition import (
    LOCAL_RANK_STEP_SECONDS,
    METRIC_NAMES,
    NODE_COMMUNICATION_SECONDS,
    NODE_COMPUTE_SECONDS,
    NODE_INPUT_WAIT_SECONDS,
    NODE_STEP_SECONDS,
    NODE_STEP_SECONDS_EWMA,
    STEP_SECONDS,
    STEPS_TOTAL,
    TRAINING_LOSS,
    render,
)
from bigmodel.runtime.machine import MachineSample
from bigmodel.runtime.stats import BUCKETS, RankStats, StepCounts, observe

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _samples(text: str) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _node() -> dict[int, RankStats]:
    rank0 = observe(observe(RankStats(), 0.010), 0.012)
    rank1 = replace(observe(RankStats(), 0.030), loss=1.5)
    gpu = MachineSample(samples=3, sched_delay=0.2, gpu_sm_clock_mhz=1500.0)
    return {
        0: replace(rank0, machine=gpu, communication_ewma=0.001, communication_steps=2),
        1: rank1,
    }


def _parts(step: float, waited: float, communicated: float, machine: MachineSample) -> RankStats:
    counts = StepCounts()
    counts.add(step, waited)
    counts.add_communication(communicated)
    counts.machine = machine
    return counts.snapshot()


def test_step_parts_are_the_slowest_ranks_and_communication_the_least() -> None:
    machine = MachineSample(samples=1)
    node = {0: _parts(0.1, 0.06, 0.02, machine), 1: _parts(0.05, 0.0, 0.07, machine)}
    samples = _samples(render(node))
    assert samples[(NODE_INPUT_WAIT_SECONDS, ())] == 0.06
    assert samples[(NODE_COMPUTE_SECONDS, ())] == 0.1 - 0.06
    assert samples[(NODE_COMMUNICATION_SECONDS, ())] == 0.02


def test_machine_figures_combine_the_local_ranks_and_gpu_ones_need_a_gpu() -> None:
    host = {
        0: _parts(0.1, 0, 0, MachineSample(samples=2, sched_delay=0.3, major_faults_per_second=4)),
        1: _parts(0.1, 0, 0, MachineSample(samples=2, sched_delay=0.1, major_faults_per_second=6)),
    }
    samples = _samples(render(host))
    assert samples[("bigmodel_node_machine_sched_delay", ())] == 0.3
    assert samples[("bigmodel_node_machine_major_faults_per_second", ())] == 10
    assert not any(name.startswith("bigmodel_node_machine_gpu") for name, _ in samples)
    gpus = {
        rank: _parts(
            0.1,
            0,
            0,
            MachineSample(samples=2, gpu_sm_clock_mhz=clock, gpu_throttle_reasons=reasons),
        )
        for rank, (clock, reasons) in enumerate([(1400.0, 0x4), (1900.0, 0x40)])
    }
    samples = _samples(render(gpus))
    assert samples[("bigmodel_node_machine_gpu_sm_clock_mhz", ())] == 1400
    assert samples[("bigmodel_node_machine_gpu_throttle_reasons", ())] == 0x44


def test_a_node_never_sampled_has_no_machine_series() -> None:
    names = {name for name, _ in _samples(render({0: observe(RankStats(), 0.1)}))}
    assert not any(name.startswith("bigmodel_node_machine_") for name in names)
    assert NODE_COMMUNICATION_SECONDS not in names  # nothing measured, nothing reported


def test_every_family_parses_and_is_a_contracted_name() -> None:
    families = {f.name for f in text_string_to_metric_families(render(_node()))}
    # The parser names a counter's family without its _total suffix.
    assert {f + "_total" if f + "_total" in METRIC_NAMES else f for f in families} == set(
        METRIC_NAMES
    )


def test_node_gauges_take_the_slowest_local_rank() -> None:
    samples = _samples(render(_node()))
    assert samples[(NODE_STEP_SECONDS, ())] == 0.030
    assert samples[(NODE_STEP_SECONDS_EWMA, ())] == 0.030
    assert samples[(LOCAL_RANK_STEP_SECONDS, (("local_rank", "0"),))] == 0.012
    assert samples[(LOCAL_RANK_STEP_SECONDS, (("local_rank", "1"),))] == 0.030


def test_counter_and_loss() -> None:
    samples = _samples(render(_node()))
    assert samples[(STEPS_TOTAL, ())] == 2
    assert samples[(TRAINING_LOSS, ())] == 1.5


def test_histogram_is_cumulative_over_all_local_ranks_with_fixed_buckets() -> None:
    samples = _samples(render(_node()))
    buckets = {labels[0][1]: v for (name, labels), v in samples.items() if name.endswith("_bucket")}
    assert len(buckets) == len(BUCKETS) + 1
    assert buckets["0.01"] == 1 and buckets["0.02"] == 2 and buckets["+Inf"] == 3
    assert samples[(STEP_SECONDS + "_count", ())] == 3
    assert samples[(STEP_SECONDS + "_sum", ())] == 0.052


def test_before_any_step_gauges_are_absent_not_zero() -> None:
    samples = _samples(render({0: RankStats(), 1: RankStats()}))
    names = {name for name, _ in samples}
    assert NODE_STEP_SECONDS not in names and LOCAL_RANK_STEP_SECONDS not in names
    assert TRAINING_LOSS not in names
    assert samples[(STEPS_TOTAL, ())] == 0
    assert samples[(STEP_SECONDS + "_count", ())] == 0


def test_an_empty_node_still_renders_valid_text() -> None:
    assert _samples(render({}))[(STEPS_TOTAL, ())] == 0
