"""The in-pod step timer: per-step times without stalling the GPU, published for `/metrics`.

    from bigmodel.runtime.timer import step_timer
    timer = step_timer(device)          # local rank 0 also serves /metrics
    for batch in loader:
        with timer.step():
            train_step(batch)

On CUDA a step is timed by two CUDA events recorded on the current stream; finished pairs are
read with the non-blocking `Event.query()` after later steps, from a bounded ring of pending
pairs, so the step path never waits for the GPU (a step is skipped, not waited for, if the
ring is full). On CPU a step is wall time. Under synchronous data parallelism every rank's
wall step converges to the slowest rank's (all wait at the gradient all-reduce); to tell a
straggling node apart, `stop_at_gradient_sync` ends each step where local work ends.
Settings (metrics port 9400 by default, bind address, stats directory) come from the
environment: see `bigmodel.runtime.environment`; metric names: `bigmodel.runtime.exposition`.
"""

import contextlib
import functools
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ParamSpec, Self, TypeVar

import torch
from torch._C._distributed_c10d import GradBucket

from bigmodel.runtime.environment import read_environment
from bigmodel.runtime.exposition import render
from bigmodel.runtime.server import MetricsServer
from bigmodel.runtime.shared_stats import StatsFile, read_ranks
from bigmodel.runtime.stats import RankStats, observe, with_loss

P = ParamSpec("P")
R = TypeVar("R")

MAX_PENDING = 64
_new_event: Callable[..., Any] = torch.cuda.Event


class StepTimer:
    """Times steps (`start`/`stop`, `with step()`, `@timed`) and publishes each update."""

    def __init__(
        self,
        device: torch.device | str | None = None,
        publish: Callable[[RankStats], None] | None = None,
        on_close: Callable[[], None] | None = None,
        max_pending: int = MAX_PENDING,
    ) -> None:
        self.stats = RankStats()
        self._cuda = device is not None and torch.device(device).type == "cuda"
        self._publish = publish or (lambda stats: None)
        self._on_close = on_close or (lambda: None)
        self._max_pending = max_pending
        self._pending: deque[tuple[Any, Any]] = deque()
        self._spare_events: list[Any] = []
        self._started: Any = None

    def start(self) -> None:
        """Mark the start of a step (a second start replaces the first)."""
        self._started = self._event() if self._cuda else time.perf_counter()

    def stop(self) -> None:
        """Mark the end of the started step; without a started step, do nothing."""
        started, self._started = self._started, None
        if started is None:
            return
        if not self._cuda:
            self._update(observe(self.stats, time.perf_counter() - started))
            return
        if len(self._pending) < self._max_pending:
            self._pending.append((started, self._event()))
        else:
            self._spare_events.append(started)
        self.poll()

    def poll(self) -> None:
        """Count the CUDA steps the GPU has finished since the last poll (never blocks)."""
        stats = self.stats
        while self._pending and self._pending[0][1].query():
            begin, end = self._pending.popleft()
            stats = observe(stats, begin.elapsed_time(end) / 1000.0)
            self._spare_events += (begin, end)
        if stats is not self.stats:
            self._update(stats)

    @contextlib.contextmanager
    def step(self) -> Iterator[None]:
        """Time the body as one step; a step that raises is not counted."""
        self.start()
        try:
            yield
        except BaseException:
            self._started = None
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
        """Publish the trainer's latest loss (pass a Python float: `.item()` syncs on CUDA)."""
        self._update(with_loss(self.stats, loss))

    def close(self) -> None:
        """Wait for the steps still on the GPU, publish them, release the endpoint and files."""
        if self._pending:
            self._pending[-1][1].synchronize()
            self.poll()
        self._on_close()
        self._on_close = lambda: None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _event(self) -> Any:
        event = self._spare_events.pop() if self._spare_events else _new_event(enable_timing=True)
        event.record()
        return event

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


def step_timer(
    device: torch.device | str | None = None, env: Mapping[str, str] | None = None
) -> StepTimer:
    """A timer publishing to this pod's shared statistics; local rank 0 serves `/metrics`."""
    pod = read_environment(os.environ if env is None else env)
    stack = contextlib.ExitStack()
    stats_file = StatsFile(pod.stats_path(pod.local_rank))
    stack.callback(stats_file.close)
    if pod.local_rank == 0:
        paths = {rank: pod.stats_path(rank) for rank in range(pod.local_world_size)}
        _serve_node_metrics(pod.metrics_host, pod.metrics_port, paths, stack)
    return StepTimer(device, publish=stats_file.write, on_close=stack.close)


def stop_at_gradient_sync(ddp_model: Any, timer: StepTimer) -> None:
    """Register a DDP comm hook that stops `timer` when the last gradient bucket is ready.

    The step then ends where this rank's forward and backward end, before it waits for the
    other ranks, so a slow node shows a larger T_i than its peers. Call `timer.start()` at
    the start of each step; the hook replaces DDP's default all-reduce with the same one.
    (No `from __future__ import annotations` here: DDP compares the hook's annotations.)
    """
    from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook

    def hook(process_group: Any, bucket: GradBucket) -> torch.futures.Future[torch.Tensor]:
        if bucket.is_last():
            timer.stop()
        return allreduce_hook(process_group, bucket)

    ddp_model.register_comm_hook(None, hook)
