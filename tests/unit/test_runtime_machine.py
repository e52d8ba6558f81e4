"""Host and GPU counters and the figures of a sampler window (`bigmodel.runtime.machine`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bigmodel.runtime.machine import (
    GpuCounters,
    HostCounters,
    HostPaths,
    gpu_figures,
    host_figures,
    read_host,
)


def _tree(tmp_path: Path, run: int, wait: int, throttled: int, stall: int) -> HostPaths:
    proc, cgroup = tmp_path / "proc", tmp_path / "cgroup"
    for task, share in (("100", 1), ("101", 3)):
        (proc / "self" / "task" / task).mkdir(parents=True, exist_ok=True)
        (proc / "self" / "task" / task / "schedstat").write_text(
            f"{run * share // 4} {wait * share // 4} 7\n"
        )
    (proc / "self" / "cgroup").write_text("0::/pods/trainer\n")
    (proc / "self" / "stat").write_text("100 (python (x) y) S " + " ".join(["1"] * 8) + " 42 0\n")
    (proc / "vmstat").write_text("nr_free_pages 5\npswpin 3\npswpout 4\n")
    pod = cgroup / "pods" / "trainer"
    pod.mkdir(parents=True, exist_ok=True)
    (pod / "cpu.stat").write_text(f"usage_usec 9\nnr_throttled 2\nthrottled_usec {throttled}\n")
    (pod / "memory.pressure").write_text(
        f"some avg10=0.00 avg60=0.00 avg300=0.00 total={stall}\n"
        "full avg10=0.00 avg60=0.00 avg300=0.00 total=1\n"
    )
    return HostPaths(proc, cgroup)


def test_read_host_sums_the_threads_and_reads_the_pods_cgroup(tmp_path: Path) -> None:
    counters = read_host(5.0, _tree(tmp_path, run=4000, wait=400, throttled=70, stall=9))
    assert counters == HostCounters(5.0, 4000, 400, 70, 42, 7, 9)


def test_read_host_reads_zero_where_the_kernel_offers_nothing(tmp_path: Path) -> None:
    assert read_host(1.0, HostPaths(tmp_path / "none", tmp_path / "none")) == HostCounters(1.0)


def test_host_figures_are_shares_and_rates_over_the_window() -> None:
    old = HostCounters(10.0, run_ns=1_000, wait_ns=0, throttled_us=0, major_faults=5)
    new = HostCounters(
        12.0,
        run_ns=4_000,
        wait_ns=1_000,
        throttled_us=500_000,
        major_faults=25,
        swap_pages=8,
        memory_stall_us=200_000,
    )
    assert host_figures(old, new) == pytest.approx(
        {
            "sched_delay": 0.25,  # waited 1000 of the 4000 ns it was runnable
            "cpu_throttled": 0.25,  # 0.5 s of 2 s
            "major_faults_per_second": 10.0,
            "swap_pages_per_second": 4.0,
            "memory_pressure": 0.1,
        }
    )


def test_no_window_no_figures() -> None:
    assert host_figures(HostCounters(3.0), HostCounters(3.0)) == {}


def _gpu(
    at: float, clock: float, reasons: int = 0, violation: int = 0, xid: int = 0
) -> GpuCounters:
    return GpuCounters(at, clock, reasons, violation, pcie_degraded=False, xid_errors=xid)


def test_gpu_figures_take_the_share_of_throttled_readings_and_every_reason_seen() -> None:
    window = [_gpu(0, 1400), _gpu(1, 1000, 0x40), _gpu(2, 1000, 0x4), _gpu(3, 1400, xid=2)]
    figures = gpu_figures(window)
    assert figures["gpu_sm_clock_mhz"] == 1200
    assert figures["gpu_throttled"] == 0.5
    assert figures["gpu_throttle_reasons"] == 0x44
    assert figures["gpu_xid_errors"] == 2


def test_gpu_violation_time_counts_as_throttling() -> None:
    figures = gpu_figures([_gpu(0, 1400), _gpu(10, 1400, violation=3_000_000_000)])
    assert figures["gpu_throttled"] == pytest.approx(0.3)
