"""The machine sampler: a daemon thread that reads the host (and GPU) counters once a
second and hands the step timer the figures of the latest window (`MachineSample`).

Its cost is one `/proc` walk of this process's threads, four small files and, on a GPU,
seven NVML queries per second (benchmarks/README.md has the measured figure). A reading
that raises stops the sampler with one line on stderr: training matters more.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from bigmodel.runtime.gpu import GpuReader
from bigmodel.runtime.machine import (
    GpuCounters,
    HostCounters,
    MachineSample,
    gpu_figures,
    host_figures,
    read_host,
)

INTERVAL_SECONDS = 1.0
"""Seconds between two readings."""
WINDOW_READINGS = 31
"""Readings a sample spans (30 intervals: 30 s, about two operator rounds)."""


class MachineSampler:
    """Reads every `interval` seconds and publishes the window's figures to `publish`."""

    def __init__(
        self,
        publish: Callable[[MachineSample], None],
        gpu: GpuReader | None = None,
        interval: float = INTERVAL_SECONDS,
        window: int = WINDOW_READINGS,
        read: Callable[[float], HostCounters] = read_host,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if window < 2:
            raise ValueError(f"sampler window {window}: must hold at least 2 readings")
        self._publish = publish
        self._gpu = gpu
        self._interval = interval
        self._read = read
        self._clock = clock
        self._host: deque[HostCounters] = deque(maxlen=window)
        self._gpus: deque[GpuCounters] = deque(maxlen=window)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> MachineSample | None:
        """Take one reading; publish and return the window's figures (None before the
        second reading)."""
        now = self._clock()
        self._host.append(self._read(now))
        if self._gpu is not None:
            self._gpus.append(self._gpu.read(now))
        if len(self._host) < 2:
            return None
        figures: dict[str, Any] = dict(host_figures(self._host[0], self._host[-1]))
        if self._gpus:
            figures.update(gpu_figures(list(self._gpus)))
        sample = replace(MachineSample(samples=len(self._host) - 1), **figures)
        self._publish(sample)
        return sample

    def start(self) -> None:
        """Sample in a daemon thread until `close`."""
        self._thread = threading.Thread(target=self._run, name="bigmodel-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.wait(self._interval):
                self.sample()
        except Exception as error:
            print(f"bigmodel: machine sampler stopped: {error!r}", file=sys.stderr)

    def close(self) -> None:
        """Stop the thread (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
