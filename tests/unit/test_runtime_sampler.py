"""The machine sampler thread (`bigmodel.runtime.sampler`), fed fake host and GPU readings."""

from __future__ import annotations

import threading

import pytest

from bigmodel.runtime.machine import GpuCounters, HostCounters, MachineSample
from bigmodel.runtime.sampler import MachineSampler


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


class _ThrottledGpu:
    """Throttled (HW thermal slowdown) at 900 MHz on every second reading."""

    def __init__(self) -> None:
        self.reads = 0

    def read(self, at: float) -> GpuCounters:
        self.reads += 1
        throttled = self.reads % 2 == 0
        return GpuCounters(at, 900.0 if throttled else 1500.0, 0x40 * throttled, 0, False, 0)


def _host(at: float) -> HostCounters:
    return HostCounters(at, run_ns=int(at * 900), wait_ns=int(at * 100))


def test_the_first_reading_publishes_nothing_the_second_a_window() -> None:
    published: list[MachineSample] = []
    sampler = MachineSampler(published.append, read=_host, clock=_Clock())
    assert sampler.sample() is None
    sample = sampler.sample()
    assert published == [sample]
    assert sample is not None and sample.samples == 1
    assert sample.sched_delay == pytest.approx(0.1)
    assert sample.gpu_sm_clock_mhz == 0  # no GPU read


def test_the_window_slides_over_the_latest_readings() -> None:
    sampler = MachineSampler(lambda s: None, _ThrottledGpu(), window=3, read=_host, clock=_Clock())
    samples = [sampler.sample() for _ in range(6)]
    last = samples[-1]
    assert last is not None and last.samples == 2
    assert last.gpu_throttle_reasons == 0x40
    assert last.gpu_throttled == pytest.approx(2 / 3)  # readings 4 and 6 of 4, 5, 6
    assert last.gpu_sm_clock_mhz == pytest.approx((900 + 1500 + 900) / 3)


def test_a_window_needs_two_readings() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        MachineSampler(lambda s: None, window=1)


def test_the_thread_samples_until_closed_and_a_failing_read_only_stops_it() -> None:
    sampled = threading.Event()
    calls: list[float] = []

    def read(at: float) -> HostCounters:
        calls.append(at)
        if len(calls) >= 3:
            sampled.set()
            raise OSError("gone")
        return HostCounters(at)

    sampler = MachineSampler(lambda s: None, interval=0.01, read=read)
    sampler.start()
    assert sampled.wait(30)
    sampler.close()
    sampler.close()  # idempotent
    assert len(calls) == 3  # stopped at the failure
