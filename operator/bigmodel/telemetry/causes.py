"""Why a straggler is slow: the decision table of docs/telemetry.md, pure.

For a flagged node against the median of its peers (the other nodes that answered), with
excess E = T_s - median(T_peers), the first row that holds names the cause:

1. its input wait exceeds its peers' by >= INPUT_SHARE of E -> InputPipeline;
2. otherwise its compute must explain the excess (exceeds its peers' by >= COMPUTE_SHARE of
   E; else Unknown), and then, against its peers' median of the same figure:
   a. GPU throttled for >= GPU_THROTTLED_SHARE more of the window, or an SM clock
      <= GPU_CLOCK_RATIO of its peers' -> GpuThrottled (the reasons in the detail);
   b. a PCIe link below its width, or new XID errors -> GpuDegraded;
   c. scheduling delay >= SCHED_DELAY_SHARE more, or at least SCHED_DELAY_SHARE and a CPU
      share (1 - delay) <= CPU_SHARE_RATIO of its peers', or CPU throttling
      >= CPU_THROTTLED_SHARE more -> HostCpu;
   d. major faults >= MAJOR_FAULTS_PER_SECOND more, swapping >= SWAP_PAGES_PER_SECOND more,
      or memory pressure >= MEMORY_PRESSURE_SHARE more -> Memory;
   e. none of these -> Unknown.
Host and GPU figures count relative to the peers, so a machine loaded alike everywhere (a
busy CI runner, a fleet-wide power cap) never explains one node. The thresholds are
starting values, tuned on the injection tests.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

from bigmodel.api.telemetry import StragglerCause
from bigmodel.runtime.gpu import reason_names
from bigmodel.telemetry.evidence import NodeEvidence

INPUT_SHARE = 0.5
"""Input wait explaining at least half of the excess names the input pipeline."""
COMPUTE_SHARE = 0.5
"""Compute must explain at least half of the excess for a machine cause to be named."""
GPU_THROTTLED_SHARE = 0.2
"""Throttled for 20% more of the sampler's window than the peers."""
GPU_CLOCK_RATIO = 0.9
"""An SM clock at or below 0.9x the peers' median."""
SCHED_DELAY_SHARE = 0.10
"""Threads waiting for a CPU 10% more of their runnable time than the peers'."""
CPU_SHARE_RATIO = 0.7
"""...or getting at most 0.7x the peers' share of CPU while runnable (on a busy machine
every node waits most of the time, and the starved one runs far less)."""
CPU_THROTTLED_SHARE = 0.05
"""The cgroup throttled by its CPU quota 5% more of the time than the peers'."""
MAJOR_FAULTS_PER_SECOND = 50.0
SWAP_PAGES_PER_SECOND = 50.0
MEMORY_PRESSURE_SHARE = 0.10
"""Some task stalled on memory 10% more of the time than the peers' (PSI)."""


@dataclass(frozen=True)
class Diagnosis:
    """A straggler's cause, the evidence for people, and its excess E in seconds."""

    cause: StragglerCause
    detail: str
    excess_seconds: float


def _s(seconds: float) -> str:
    return f"{seconds:.3g}s"


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


@dataclass(frozen=True)
class _Against:
    """One node's evidence against its peers'."""

    node: NodeEvidence
    peers: list[NodeEvidence]

    def part_excess(self, pick: Callable[[NodeEvidence], float | None]) -> float | None:
        mine = pick(self.node)
        theirs = [v for v in map(pick, self.peers) if v is not None]
        return None if mine is None else mine - _median(theirs)

    def figure(self, name: str) -> tuple[float, float]:
        """The node's figure and its peers' median (0 where not reported)."""
        theirs = [p.machine[name] for p in self.peers if name in p.machine]
        return self.node.machine.get(name, 0.0), _median(theirs)

    def above(self, name: str, threshold: float) -> bool:
        mine, theirs = self.figure(name)
        return mine - theirs >= threshold


def _machine_cause(against: _Against) -> tuple[StragglerCause, str] | None:
    throttled, peers_throttled = against.figure("gpu_throttled")
    clock, peers_clock = against.figure("gpu_sm_clock_mhz")
    slow_clock = clock > 0 and peers_clock > 0 and clock <= GPU_CLOCK_RATIO * peers_clock
    if throttled - peers_throttled >= GPU_THROTTLED_SHARE or slow_clock:
        reasons = reason_names(int(against.node.machine.get("gpu_throttle_reasons", 0)))
        return StragglerCause.GPU_THROTTLED, (
            f"GPU throttled {throttled:.0%} of the window (peers {peers_throttled:.0%}), "
            f"SM clock {clock:.0f} MHz (peers {peers_clock:.0f}), "
            f"reasons: {', '.join(reasons) or 'none reported'}"
        )
    if against.node.machine.get("gpu_pcie_degraded") or against.node.machine.get("gpu_xid_errors"):
        xids = int(against.node.machine.get("gpu_xid_errors", 0))
        link = "below its width" if against.node.machine.get("gpu_pcie_degraded") else "full"
        return StragglerCause.GPU_DEGRADED, f"PCIe link {link}, {xids} new XID errors"
    delay, peers_delay = against.figure("sched_delay")
    starved = delay >= SCHED_DELAY_SHARE and (1 - delay) <= CPU_SHARE_RATIO * (1 - peers_delay)
    if (
        delay - peers_delay >= SCHED_DELAY_SHARE
        or starved
        or against.above("cpu_throttled", CPU_THROTTLED_SHARE)
    ):
        quota, peers_quota = against.figure("cpu_throttled")
        return StragglerCause.HOST_CPU, (
            f"threads waited for a CPU {delay:.0%} of their runnable time (peers "
            f"{peers_delay:.0%}), CPU-throttled {quota:.0%} of the time (peers {peers_quota:.0%})"
        )
    if (
        against.above("major_faults_per_second", MAJOR_FAULTS_PER_SECOND)
        or against.above("swap_pages_per_second", SWAP_PAGES_PER_SECOND)
        or against.above("memory_pressure", MEMORY_PRESSURE_SHARE)
    ):
        faults, _ = against.figure("major_faults_per_second")
        swap, _ = against.figure("swap_pages_per_second")
        stalled, _ = against.figure("memory_pressure")
        return StragglerCause.MEMORY, (
            f"{faults:.0f} major faults/s, {swap:.0f} swapped pages/s, "
            f"stalled on memory {stalled:.0%} of the time"
        )
    return None


def _diagnose_one(
    t: float, node: NodeEvidence, peers: Mapping[str, tuple[float, NodeEvidence]]
) -> Diagnosis:
    if not peers:
        return Diagnosis(StragglerCause.UNKNOWN, "no peer answered to compare with", 0.0)
    median = _median([time for time, _ in peers.values()])
    excess = t - median
    if excess <= 0:
        detail = f"T_i {_s(t)} is not above its peers' median {_s(median)}"
        return Diagnosis(StragglerCause.UNKNOWN, detail, 0.0)
    against = _Against(node, [evidence for _, evidence in peers.values()])
    waited = against.part_excess(lambda e: e.input_wait)
    if waited is not None and waited >= INPUT_SHARE * excess:
        detail = f"input wait {_s(waited)} over its peers' of {_s(excess)} excess"
        return Diagnosis(StragglerCause.INPUT_PIPELINE, detail, excess)
    computed = against.part_excess(lambda e: e.compute)
    if computed is None or computed < COMPUTE_SHARE * excess:
        parts = (
            "no step parts reported"
            if computed is None
            else f"input wait {_s(waited or 0.0)} and compute {_s(computed)} over its peers'"
        )
        return Diagnosis(StragglerCause.UNKNOWN, f"{parts}, of {_s(excess)} excess", excess)
    found = _machine_cause(against)
    compute = f"compute {_s(computed)} over its peers' of {_s(excess)} excess"
    if found is None:
        return Diagnosis(StragglerCause.UNKNOWN, f"{compute}; no host or GPU evidence", excess)
    cause, evidence = found
    return Diagnosis(cause, f"{compute}; {evidence}", excess)


def diagnose(
    times: Mapping[str, float],
    evidence: Mapping[str, NodeEvidence],
    flagged: Collection[str],
) -> dict[str, Diagnosis]:
    """The cause of each flagged node that has a T_i this round (`times`: node -> valid
    T_i; `evidence`: node -> its parts and figures, absent: none reported)."""
    found: dict[str, Diagnosis] = {}
    for key in flagged:
        if key not in times:
            continue
        peers = {
            other: (t, evidence.get(other, NodeEvidence()))
            for other, t in times.items()
            if other != key
        }
        found[key] = _diagnose_one(times[key], evidence.get(key, NodeEvidence()), peers)
    return found
