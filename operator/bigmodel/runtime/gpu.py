"""This process's GPU as NVML sees it, for the machine sampler: SM clock, clock-event
(throttle) reasons, power/thermal violation time, PCIe link width, XID errors.

NVML comes from `nvidia-ml-py` (module `pynvml`) where it is installed; without it, or
without a GPU, there is no reader and the sampler reads the host only. The calls are all
per-device queries of a few microseconds; processes are never listed (that holds the
driver lock for milliseconds). `GpuReader` is the interface the sampler uses, so tests give
it fake readings.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, Protocol

from bigmodel.runtime.machine import GpuCounters

IGNORED_REASONS = 0x1 | 0x2
"""Clock-event bits that are no throttling: GPU idle, application clocks setting."""
REASON_NAMES: Mapping[int, str] = {
    0x4: "SwPowerCap",
    0x8: "HwSlowdown",
    0x10: "SyncBoost",
    0x20: "SwThermalSlowdown",
    0x40: "HwThermalSlowdown",
    0x80: "HwPowerBrakeSlowdown",
    0x100: "DisplayClockSetting",
}
"""NVML's clock-event reason bits, by the names of its `nvmlClocksEventReason*` constants."""
_CLOCK_SM = 1  # NVML_CLOCK_SM
_PERF_POLICY_POWER, _PERF_POLICY_THERMAL = 0, 1
_EVENT_XID_CRITICAL = 0x8  # nvmlEventTypeXidCriticalError


def reason_names(bits: int) -> list[str]:
    """The names of the reasons set in `bits` (unknown bits as hex)."""
    names = [name for bit, name in REASON_NAMES.items() if bits & bit]
    unknown = bits & ~IGNORED_REASONS & ~sum(REASON_NAMES)
    return names + ([hex(unknown)] if unknown else [])


class GpuReader(Protocol):
    """Reads this process's GPU."""

    def read(self, at: float) -> GpuCounters:
        """The GPU's counters now (`at`: the caller's monotonic clock)."""
        ...


class NvmlReader:
    """A `GpuReader` over NVML for one device handle."""

    def __init__(self, nvml: Any, handle: Any) -> None:
        self._nvml = nvml
        self._handle = handle
        self._xids = 0
        try:
            self._events: Any = nvml.nvmlEventSetCreate()
            nvml.nvmlDeviceRegisterEvents(handle, _EVENT_XID_CRITICAL, self._events)
        except nvml.NVMLError:  # not supported on this device or driver: no XID counting
            self._events = None

    def read(self, at: float) -> GpuCounters:
        nvml, handle = self._nvml, self._handle
        violation = sum(
            int(nvml.nvmlDeviceGetViolationStatus(handle, policy).violationTime)
            for policy in (_PERF_POLICY_POWER, _PERF_POLICY_THERMAL)
        )
        width = nvml.nvmlDeviceGetCurrPcieLinkWidth(handle)
        return GpuCounters(
            at=at,
            sm_clock_mhz=float(nvml.nvmlDeviceGetClockInfo(handle, _CLOCK_SM)),
            throttle_reasons=int(nvml.nvmlDeviceGetCurrentClocksEventReasons(handle))
            & ~IGNORED_REASONS,
            violation_ns=violation,
            # Width only: the link generation drops at idle to save power, which is normal.
            pcie_degraded=width < nvml.nvmlDeviceGetMaxPcieLinkWidth(handle),
            xid_errors=self._count_xids(),
        )

    def _count_xids(self) -> int:
        while self._events is not None:
            try:
                self._nvml.nvmlEventSetWait_v2(self._events, 0)
            except self._nvml.NVMLError:  # a timeout: no event waiting
                break
            self._xids += 1
        return self._xids


def _device_index(env: Mapping[str, str], local_rank: int) -> int | str:
    """The NVML index (or UUID) of the GPU that CUDA calls `local_rank` in this process."""
    visible = [d.strip() for d in env.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    if local_rank < len(visible):
        device = visible[local_rank]
        return int(device) if device.isdigit() else device
    return local_rank


def open_gpu_reader(env: Mapping[str, str], local_rank: int) -> GpuReader | None:
    """An NVML reader of this process's GPU; None without `pynvml`, a driver or that GPU."""
    try:
        nvml = importlib.import_module("pynvml")
    except ImportError:
        return None
    try:
        nvml.nvmlInit()
        device = _device_index(env, local_rank)
        if isinstance(device, str):
            handle = nvml.nvmlDeviceGetHandleByUUID(device)
        elif device < nvml.nvmlDeviceGetCount():
            handle = nvml.nvmlDeviceGetHandleByIndex(device)
        else:
            return None
        reader = NvmlReader(nvml, handle)
        reader.read(0.0)  # fail here, not in the sampler, when a query is unsupported
    except nvml.NVMLError:
        return None
    return reader
