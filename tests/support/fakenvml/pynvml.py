"""A stand-in for `nvidia-ml-py`'s `pynvml`, put first on a job's PYTHONPATH by the
straggler-cause tests: one healthy GPU per process, except on the node whose rank is in
`FAKE_NVML_THROTTLED_NODE`, whose GPU reports HW thermal slowdown at a lower SM clock.
Only the calls `bigmodel.runtime.gpu` makes exist (a process listing would fail loudly)."""

from __future__ import annotations

import os
from types import SimpleNamespace

HEALTHY_MHZ = 1980
THROTTLED_MHZ = 1200
HW_THERMAL_SLOWDOWN = 0x40


class NVMLError(Exception):
    """NVML's error base class."""


def _throttled() -> bool:
    return os.environ.get("GROUP_RANK") == os.environ.get("FAKE_NVML_THROTTLED_NODE")


def nvmlInit() -> None:
    """No driver to load."""


def nvmlDeviceGetCount() -> int:
    return 1


def nvmlDeviceGetHandleByIndex(index: int) -> str:
    return f"fake-gpu-{index}"


def nvmlDeviceGetHandleByUUID(uuid: str) -> str:
    return uuid


def nvmlDeviceGetClockInfo(handle: str, clock: int) -> int:
    return THROTTLED_MHZ if _throttled() else HEALTHY_MHZ


def nvmlDeviceGetCurrentClocksEventReasons(handle: str) -> int:
    return HW_THERMAL_SLOWDOWN if _throttled() else 0x1  # healthy: idle only


def nvmlDeviceGetViolationStatus(handle: str, policy: int) -> SimpleNamespace:
    return SimpleNamespace(referenceTime=0, violationTime=0)


def nvmlDeviceGetCurrPcieLinkWidth(handle: str) -> int:
    return 16


def nvmlDeviceGetMaxPcieLinkWidth(handle: str) -> int:
    return 16


def nvmlEventSetCreate() -> str:
    return "events"


def nvmlDeviceRegisterEvents(handle: str, types: int, events: str) -> None:
    """XID events registered; none ever arrives."""


def nvmlEventSetWait_v2(events: str, timeout_ms: int) -> None:
    raise NVMLError("timeout")
