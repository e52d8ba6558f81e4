"""NVML readings (`bigmodel.runtime.gpu`) through a fake `pynvml` module: the calls made,
the bits kept, XIDs counted, and no reader without NVML."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest

from bigmodel.runtime.gpu import NvmlReader, open_gpu_reader, reason_names


class NVMLError(Exception):
    pass


def _fake_nvml(xids: int = 0, reasons: int = 0x1 | 0x40, count: int = 2) -> Any:
    pending = [xids]
    calls: list[str] = []

    def wait(events: object, timeout_ms: int) -> object:
        if not pending[0]:
            raise NVMLError("timeout")
        pending[0] -= 1
        return object()

    def call(name: str, value: Any) -> Any:
        def fn(*args: object) -> Any:
            calls.append(name)
            return value(*args) if callable(value) else value

        return fn

    nvml = types.SimpleNamespace(
        NVMLError=NVMLError,
        calls=calls,
        pending=pending,
        nvmlInit=call("init", None),
        nvmlDeviceGetCount=call("count", count),
        nvmlDeviceGetHandleByIndex=call("handle", lambda i: f"gpu{i}"),
        nvmlDeviceGetHandleByUUID=call("uuid", lambda u: u),
        nvmlDeviceGetClockInfo=call("clock", 1100),
        nvmlDeviceGetCurrentClocksEventReasons=call("reasons", reasons),
        nvmlDeviceGetViolationStatus=call(
            "violation", lambda h, policy: types.SimpleNamespace(violationTime=1000 * (policy + 1))
        ),
        nvmlDeviceGetCurrPcieLinkWidth=call("width", 8),
        nvmlDeviceGetMaxPcieLinkWidth=call("max width", 16),
        nvmlEventSetCreate=call("events", "set"),
        nvmlDeviceRegisterEvents=call("register", None),
        nvmlEventSetWait_v2=wait,
    )
    return nvml


@pytest.fixture
def installed() -> Iterator[Any]:
    nvml = _fake_nvml(xids=2)
    sys.modules["pynvml"] = nvml  # type: ignore[assignment]
    yield nvml
    del sys.modules["pynvml"]


def test_a_reading_keeps_the_throttle_bits_and_drops_idle(installed: Any) -> None:
    reader = open_gpu_reader({}, local_rank=1)
    assert reader is not None
    counters = reader.read(7.0)
    assert (counters.at, counters.sm_clock_mhz) == (7.0, 1100.0)
    assert counters.throttle_reasons == 0x40
    assert counters.violation_ns == 3000  # power + thermal
    assert counters.pcie_degraded  # x8 of x16


def test_xid_errors_accumulate_across_readings(installed: Any) -> None:
    reader = NvmlReader(installed, "gpu0")
    assert reader.read(1.0).xid_errors == 2
    installed.pending[0] = 1
    assert reader.read(2.0).xid_errors == 3


def test_processes_are_never_listed(installed: Any) -> None:
    reader = open_gpu_reader({"CUDA_VISIBLE_DEVICES": "1"}, local_rank=0)
    assert reader is not None
    reader.read(1.0)
    assert not any("process" in name.lower() for name in installed.calls)
    assert not any(
        name.startswith("nvmlDeviceGet") and "Process" in name for name in dir(installed)
    )


def test_no_reader_for_a_rank_without_a_gpu(installed: Any) -> None:
    assert open_gpu_reader({}, local_rank=5) is None


def test_no_reader_without_pynvml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)
    assert open_gpu_reader({}, local_rank=0) is None


def test_no_reader_when_nvml_fails_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    nvml = _fake_nvml()

    def fail() -> None:
        raise NVMLError("driver not loaded")

    nvml.nvmlInit = fail
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    assert open_gpu_reader({}, local_rank=0) is None


def test_reason_names() -> None:
    assert reason_names(0x40 | 0x4) == ["SwPowerCap", "HwThermalSlowdown"]
    assert reason_names(0x10000) == ["0x10000"]
