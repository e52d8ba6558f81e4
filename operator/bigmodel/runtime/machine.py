"""What a process's machine does to its steps: cumulative host counters read from `/proc`
and the cgroup, and the windowed figures made of them (`MachineSample`).

Stdlib-only and pure except for `read_host`, so the operator can import the record. The
counters (all cumulative, so that a figure is a difference over a window):

- scheduling: the nanoseconds this process's threads ran and waited runnable for a CPU
  (`/proc/self/task/*/schedstat`, fields 1 and 2);
- CPU throttling: `throttled_usec` of the cgroup's `cpu.stat` (cgroup v2);
- major page faults of this process (`/proc/self/stat`, field 12) and the host's swap-in
  and swap-out pages (`/proc/vmstat` `pswpin` + `pswpout`);
- memory pressure: PSI `some total=` microseconds (the cgroup's `memory.pressure`, else
  `/proc/pressure/memory`).
A counter the kernel does not offer stays 0, so its figure reads 0 (no evidence).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

_PROC = Path("/proc")
_CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class HostCounters:
    """Cumulative host counters at one instant (`at`: monotonic seconds)."""

    at: float
    run_ns: int = 0
    wait_ns: int = 0
    throttled_us: int = 0
    major_faults: int = 0
    swap_pages: int = 0
    memory_stall_us: int = 0


@dataclass(frozen=True)
class GpuCounters:
    """What NVML said of this process's GPU at one instant (`runtime.gpu`)."""

    at: float
    sm_clock_mhz: float
    throttle_reasons: int
    """Active clock-event reasons, NVML's bitmask, idle and application-clock bits removed."""
    violation_ns: int
    """Power and thermal violation time so far (NVML performance-policy counters)."""
    pcie_degraded: bool
    """The PCIe link runs below its maximum width or generation."""
    xid_errors: int
    """XID errors seen so far."""


@dataclass(frozen=True)
class MachineSample:
    """Figures over the sampler's latest window (fractions in 0..1, rates per second).

    `samples` counts the readings behind them (0: never sampled, nothing to report);
    GPU figures are 0 on a process without a GPU (`gpu_sm_clock_mhz` == 0)."""

    samples: int = 0
    sched_delay: float = 0.0
    """Share of the threads' runnable time spent waiting for a CPU: wait / (run + wait)."""
    cpu_throttled: float = 0.0
    """Share of wall time the cgroup was throttled by its CPU quota."""
    major_faults_per_second: float = 0.0
    swap_pages_per_second: float = 0.0
    memory_pressure: float = 0.0
    """Share of wall time some task stalled on memory (PSI `some`)."""
    gpu_sm_clock_mhz: float = 0.0
    """Mean SM clock over the window."""
    gpu_throttled: float = 0.0
    """Share of the window with a throttle reason active, or of power/thermal violation."""
    gpu_throttle_reasons: int = 0
    """Every throttle reason seen in the window (NVML's bitmask)."""
    gpu_pcie_degraded: bool = False
    gpu_xid_errors: int = 0
    """XID errors new in the window."""


def _ratio(part: float, whole: float) -> float:
    return min(1.0, max(0.0, part / whole)) if whole > 0 else 0.0


def host_figures(old: HostCounters, new: HostCounters) -> dict[str, float]:
    """The host figures of a `MachineSample` over the window from `old` to `new`."""
    wall = new.at - old.at
    if wall <= 0:
        return {}
    run, wait = new.run_ns - old.run_ns, new.wait_ns - old.wait_ns
    return {
        "sched_delay": _ratio(wait, run + wait),
        "cpu_throttled": _ratio((new.throttled_us - old.throttled_us) / 1e6, wall),
        "major_faults_per_second": max(0, new.major_faults - old.major_faults) / wall,
        "swap_pages_per_second": max(0, new.swap_pages - old.swap_pages) / wall,
        "memory_pressure": _ratio((new.memory_stall_us - old.memory_stall_us) / 1e6, wall),
    }


def gpu_figures(window: list[GpuCounters]) -> dict[str, float | int | bool]:
    """The GPU figures of a `MachineSample` over consecutive readings `window` (oldest
    first; at least one)."""
    old, new = window[0], window[-1]
    wall = new.at - old.at
    throttled_share = sum(1 for g in window if g.throttle_reasons) / len(window)
    violation = _ratio((new.violation_ns - old.violation_ns) / 1e9, wall) if wall > 0 else 0.0
    reasons = 0
    for reading in window:
        reasons |= reading.throttle_reasons
    return {
        "gpu_sm_clock_mhz": sum(g.sm_clock_mhz for g in window) / len(window),
        "gpu_throttled": max(throttled_share, violation),
        "gpu_throttle_reasons": reasons,
        "gpu_pcie_degraded": any(g.pcie_degraded for g in window),
        "gpu_xid_errors": max(0, new.xid_errors - old.xid_errors),
    }


# --- reading the counters (the only I/O here) ----------------------------------------------


def _read(path: Path | str) -> str:
    try:
        with open(path, "rb") as file:  # noqa: PTH123 - plain open: the sampler's hot path
            return file.read().decode()
    except OSError:  # absent (another kernel, no cgroup v2) or a thread that just exited
        return ""


def _fields(text: str) -> dict[str, int]:
    """`key value` lines (cpu.stat, vmstat) as a dict."""
    found: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            found[key] = int(value)
    return found


@functools.cache
def _cgroup_directory(proc: Path, root: Path) -> Path:
    """This process's cgroup v2 directory (the root when unknown)."""
    for line in _read(proc / "self" / "cgroup").splitlines():
        if line.startswith("0::"):
            return root / line[3:].strip().lstrip("/")
    return root


def _schedstat(proc: Path) -> tuple[int, int]:
    run = wait = 0
    try:
        with os.scandir(proc / "self" / "task") as entries:
            tasks = [entry.path for entry in entries]
    except OSError:
        return 0, 0
    for task in tasks:
        fields = _read(task + "/schedstat").split()
        if len(fields) >= 2:
            run, wait = run + int(fields[0]), wait + int(fields[1])
    return run, wait


def _major_faults(proc: Path) -> int:
    stat = _read(proc / "self" / "stat")
    fields = stat[stat.rfind(")") + 2 :].split()  # after `pid (comm) `: state is field 3
    return int(fields[9]) if len(fields) > 9 else 0


def _stall_us(pressure: str) -> int:
    for line in pressure.splitlines():
        if line.startswith("some "):
            for field in line.split():
                if field.startswith("total="):
                    return int(field[6:])
    return 0


@dataclass(frozen=True)
class HostPaths:
    """Where the counters live (tests point these at a fake tree)."""

    proc: Path = _PROC
    cgroup_root: Path = _CGROUP_ROOT


def read_host(at: float, paths: HostPaths | None = None) -> HostCounters:
    """The host counters now (`at`: the caller's monotonic clock)."""
    paths = paths or HostPaths()
    cgroup = _cgroup_directory(paths.proc, paths.cgroup_root)
    run, wait = _schedstat(paths.proc)
    cpu = _fields(_read(cgroup / "cpu.stat"))
    vmstat = _fields(_read(paths.proc / "vmstat"))
    pressure = _read(cgroup / "memory.pressure") or _read(paths.proc / "pressure" / "memory")
    return HostCounters(
        at=at,
        run_ns=run,
        wait_ns=wait,
        throttled_us=cpu.get("throttled_usec", 0),
        major_faults=_major_faults(paths.proc),
        swap_pages=vmstat.get("pswpin", 0) + vmstat.get("pswpout", 0),
        memory_stall_us=_stall_us(pressure),
    )
