"""The framework-neutral step timer: wall time per step, for loops that are not torch
(TensorFlow, JAX, a Dask or NumPy loop), published to the same `/metrics` as the torch timer.

    from bigmodel.runtime.steps import step_timer
    timer = step_timer()                # serves /metrics on BIGMODEL_METRICS_PORT
    for batch in data:
        with timer.step():              # or timer.begin() ... timer.end()
            train_step(batch)

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
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import ParamSpec, Self, TypeVar

from bigmodel.runtime.environment import read_environment
from bigmodel.runtime.exposition import render
from bigmodel.runtime.server import MetricsServer
from bigmodel.runtime.shared_stats import StatsFile, read_ranks
from bigmodel.runtime.stats import RankStats, observe, with_loss

P = ParamSpec("P")
R = TypeVar("R")


class WallStepTimer:
    """Times steps (`begin`/`end` or `start`/`stop`, `with step()`, `@timed`) by wall time
    and publishes each update."""

    def __init__(
        self,
        publish: Callable[[RankStats], None] | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.stats = RankStats()
        self._publish = publish or (lambda stats: None)
        self._on_close = on_close or (lambda: None)
        self._began: float | None = None

    def start(self) -> None:
        """Mark the start of a step (a second start replaces the first)."""
        self._began = time.perf_counter()

    def stop(self) -> None:
        """Mark the end of the started step; without a started step, do nothing."""
        began, self._began = self._began, None
        if began is not None:
            self._update(observe(self.stats, time.perf_counter() - began))

    def begin(self) -> None:
        """Same as `start`."""
        self.start()

    def end(self) -> None:
        """Same as `stop`."""
        self.stop()

    def abandon(self) -> None:
        """Forget the started step without counting it."""
        self._began = None

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

    def set_loss(self, loss: float) -> None:
        """Publish the trainer's latest loss (a Python float)."""
        self._update(with_loss(self.stats, loss))

    def close(self) -> None:
        """Release the endpoint and the statistics file (idempotent)."""
        self._on_close()
        self._on_close = lambda: None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _update(self, stats: RankStats) -> None:
        self.stats = stats
        self._publish(stats)


def _serve_node_metrics(
    host: str, port: int, paths: Mapping[int, Path], stack: contextlib.ExitStack
) -> None:
    try:
        server = MetricsServer(host, port, lambda: render(read_ranks(paths)))
    except OSError as error:  # training matters more than its telemetry: say so, go on
        print(f"bigmodel: /metrics not served on {host}:{port}: {error}", file=sys.stderr)
        return
    stack.callback(server.close)


def pod_publishing(
    env: Mapping[str, str] | None = None,
) -> tuple[Callable[[RankStats], None], Callable[[], None]]:
    """Where a timer of this process publishes (its local rank's shared statistics) and
    what closing it releases; local rank 0 also serves the pod's `/metrics`."""
    pod = read_environment(os.environ if env is None else env)
    stack = contextlib.ExitStack()
    stats_file = StatsFile(pod.stats_path(pod.local_rank))
    stack.callback(stats_file.close)
    if pod.local_rank == 0:
        paths = {rank: pod.stats_path(rank) for rank in range(pod.local_world_size)}
        _serve_node_metrics(pod.metrics_host, pod.metrics_port, paths, stack)
    return stats_file.write, stack.close


def step_timer(env: Mapping[str, str] | None = None) -> WallStepTimer:
    """A wall-time timer publishing to this pod's `/metrics` (see `pod_publishing`)."""
    publish, on_close = pod_publishing(env)
    return WallStepTimer(publish, on_close)
