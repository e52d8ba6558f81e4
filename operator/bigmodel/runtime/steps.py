"""The framework-neutral step timer: wall time per step, for loops that are not torch
(TensorFlow, JAX, a Dask or NumPy loop), published to the same `/metrics` as the torch timer.

    from bigmodel.runtime.steps import step_timer
    timer = step_timer()                # serves /metrics on BIGMODEL_METRICS_PORT
    for batch in data:
        with timer.step():              # or timer.begin() ... timer.end()
            train_step(batch)

The parts of a step, for naming why a node is slow (docs/telemetry.md): `input_ready()`
inside a step marks the batch ready (input wait = from the step's start to it; compute is
the rest), and `communication_done()` after `stop()` marks the end of the exposed gradient
all-reduce (from the stop to it). A loop that marks neither reports all of its step as
compute. A machine sampler thread (`bigmodel.runtime.sampler`) reads the host and GPU once
a second unless `BIGMODEL_MACHINE_SAMPLER=0`.

It imports no framework. A step is the wall time between `begin` and `end`; code that runs
work asynchronously on a device should end the step where its results are used (Keras
returns a batch's logs once the step has run, see `bigmodel.runtime.keras`). The torch timer
(`bigmodel.runtime.timer.StepTimer`) is this timer with CUDA events on GPUs.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import ParamSpec, Self, TypeVar

from bigmodel.runtime.environment import read_environment
from bigmodel.runtime.exposition import render
from bigmodel.runtime.gpu import open_gpu_reader
from bigmodel.runtime.machine import MachineSample
from bigmodel.runtime.sampler import MachineSampler
from bigmodel.runtime.server import MetricsServer
from bigmodel.runtime.shared_stats import StatsFile, read_ranks
from bigmodel.runtime.stats import RankStats, StepCounts

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T", bound="WallStepTimer")


# At most how often a timer publishes between scrapes (seconds): a step is counted in place,
# and written to the shared statistics when this much time has passed since the last write
# (and on every scrape of the process serving /metrics, on each loss, and on close).
PUBLISH_INTERVAL = 0.1


class WallStepTimer:
    """Times steps (`begin`/`end` or `start`/`stop`, `with step()`, `@timed`) by wall time,
    counting them in place and publishing at most every `publish_interval` seconds."""

    def __init__(
        self,
        publish: Callable[[RankStats], None] | None = None,
        on_close: Callable[[], None] | None = None,
        publish_interval: float = PUBLISH_INTERVAL,
    ) -> None:
        self._counts = StepCounts()
        self._lock = threading.Lock()  # a scrape publishes from the metrics server's thread
        self._publish_to = publish or (lambda stats: None)
        self._on_close: Callable[[], None] | None = on_close or (lambda: None)
        self._interval = publish_interval
        self._publish_due = 0.0  # the first step is published at once
        self._began: float | None = None
        self._input_ready: float | None = None
        self._stopped: float | None = None

    @property
    def stats(self) -> RankStats:
        """The statistics counted so far (published or not yet)."""
        with self._lock:
            return self._counts.snapshot()

    def start(self) -> None:
        """Mark the start of a step (a second start replaces the first)."""
        self._began = time.perf_counter()
        self._input_ready = self._stopped = None

    def input_ready(self) -> None:
        """Mark the step's input as ready: the step's time so far was input wait."""
        if self._began is not None:
            self._input_ready = time.perf_counter()

    def stop(self) -> None:
        """Mark the end of the started step; without a started step, do nothing."""
        began, self._began = self._began, None
        if began is not None:
            self._stopped = now = time.perf_counter()
            ready = self._input_ready
            self.count(now - began, 0.0 if ready is None else ready - began)

    def communication_done(self) -> None:
        """Mark the end of the exposed communication that followed the stopped step."""
        stopped, self._stopped = self._stopped, None
        if stopped is not None:
            self.count_communication(time.perf_counter() - stopped)

    def begin(self) -> None:
        """Same as `start`."""
        self.start()

    def end(self) -> None:
        """Same as `stop`."""
        self.stop()

    def abandon(self) -> None:
        """Forget the started step without counting it."""
        self._began = self._input_ready = None

    @contextlib.contextmanager
    def step(self) -> Iterator[None]:
        """Time the body as one step; a step that raises is not counted."""
        self.start()
        try:
            yield
        except BaseException:
            self.abandon()
            raise
        self.stop()

    def timed(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Decorator: each call of `fn` is one step."""

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with self.step():
                return fn(*args, **kwargs)

        return wrapper

    def count(self, seconds: float, input_seconds: float = 0.0) -> None:
        """Count one step of `seconds` (`input_seconds` of it input wait) measured
        elsewhere; publish if a publication is due."""
        with self._lock:
            self._counts.add(seconds, input_seconds)
        if time.perf_counter() >= self._publish_due:
            self.publish()

    def count_communication(self, seconds: float) -> None:
        """Count the exposed communication of one step, measured elsewhere."""
        with self._lock:
            self._counts.add_communication(seconds)

    def set_machine(self, sample: MachineSample) -> None:
        """Keep the machine sampler's latest figures (published with the next steps)."""
        with self._lock:
            self._counts.machine = sample

    def set_loss(self, loss: float) -> None:
        """Record and publish the trainer's latest loss (a Python float)."""
        with self._lock:
            self._counts.loss = float(loss)
        self.publish()

    def publish(self) -> None:
        """Publish the statistics counted so far, now (a no-op once closed)."""
        with self._lock:
            if self._on_close is None:
                return
            self._publish_due = time.perf_counter() + self._interval
            self._publish_to(self._counts.snapshot())

    def close(self) -> None:
        """Publish the last steps, then release the endpoint and the statistics file
        (idempotent)."""
        self.publish()
        with self._lock:
            on_close, self._on_close = self._on_close, None
        if on_close is not None:
            on_close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _serve_node_metrics(
    host: str, port: int, render_page: Callable[[], str], stack: contextlib.ExitStack
) -> None:
    try:
        server = MetricsServer(host, port, render_page)
    except OSError as error:  # training matters more than its telemetry: say so, go on
        print(f"bigmodel: /metrics not served on {host}:{port}: {error}", file=sys.stderr)
        return
    stack.callback(server.close)


def pod_timer(
    make: Callable[[Callable[[RankStats], None], Callable[[], None]], T],
    env: Mapping[str, str] | None = None,
) -> T:
    """A timer `make(publish, on_close)` publishing to its local rank's shared statistics;
    closing it releases them. Local rank 0 also serves the pod's `/metrics`, and publishes
    its own timer on each scrape, so a scrape sees every step it has counted."""
    env = os.environ if env is None else env
    pod = read_environment(env)
    stack = contextlib.ExitStack()
    stats_file = StatsFile(pod.stats_path(pod.local_rank))
    stack.callback(stats_file.close)
    timer = make(stats_file.write, stack.close)
    if pod.sample_machine:
        sampler = MachineSampler(timer.set_machine, open_gpu_reader(env, pod.local_rank))
        sampler.start()
        stack.callback(sampler.close)
    if pod.local_rank == 0:
        paths = {rank: pod.stats_path(rank) for rank in range(pod.local_world_size)}

        def scrape() -> str:
            timer.publish()
            return render(read_ranks(paths))

        _serve_node_metrics(pod.metrics_host, pod.metrics_port, scrape, stack)
    return timer


def step_timer(env: Mapping[str, str] | None = None) -> WallStepTimer:
    """A wall-time timer publishing to this pod's `/metrics` (see `pod_timer`)."""
    return pod_timer(WallStepTimer, env)
