"""The in-pod step timer: per-step times without stalling the GPU, published for `/metrics`.

    from bigmodel.runtime.timer import step_timer
    timer = step_timer(device)          # local rank 0 also serves /metrics
    for batch in loader:
        with timer.step():
            train_step(batch)

On CUDA a step is timed by CUDA events recorded on the current stream (start, input ready,
stop, communication done: the parts of `bigmodel.runtime.steps`); a step's events are read
with the non-blocking `Event.query()` after later steps, from a bounded ring of pending
steps, so the step path never waits for the GPU (a step is skipped, not waited for, if the
ring is full). On CPU a step is wall time (`bigmodel.runtime.steps`, the framework-neutral
timer it extends). Under synchronous data parallelism every rank's
wall step converges to the slowest rank's (all wait at the gradient all-reduce); to tell a
straggling node apart, `stop_at_gradient_sync` ends each step where local work ends.
Settings (metrics port 9400 by default, bind address, stats directory) come from the
environment: see `bigmodel.runtime.environment`; metric names: `bigmodel.runtime.exposition`.
"""

import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch._C._distributed_c10d import GradBucket

from bigmodel.runtime.stats import RankStats
from bigmodel.runtime.steps import WallStepTimer, pod_timer

MAX_PENDING = 64
_new_event: Callable[..., Any] = torch.cuda.Event


class StepTimer(WallStepTimer):
    """The step timer of torch loops: wall time on CPU, CUDA events on a GPU device."""

    def __init__(
        self,
        device: torch.device | str | None = None,
        publish: Callable[[RankStats], None] | None = None,
        on_close: Callable[[], None] | None = None,
        max_pending: int = MAX_PENDING,
    ) -> None:
        super().__init__(publish, on_close)
        self._cuda = device is not None and torch.device(device).type == "cuda"
        self._max_pending = max_pending
        self._pending: deque[list[Any]] = deque()  # [start, input | None, stop, comm | None]
        self._open: list[Any] | None = None  # the stopped step, until the next start
        self._spare_events: list[Any] = []
        self._started: Any = None
        self._input: Any = None

    def start(self) -> None:
        """Mark the start of a step (a second start replaces the first)."""
        if not self._cuda:
            super().start()
            return
        self._close_open()
        self._started = self._event()

    def input_ready(self) -> None:
        """Mark the step's input as ready: the step's time so far was input wait."""
        if not self._cuda:
            super().input_ready()
        elif self._started is not None:
            self._input = self._event()

    def stop(self) -> None:
        """Mark the end of the started step; without a started step, do nothing."""
        if not self._cuda:
            super().stop()
            return
        started, self._started = self._started, None
        marked, self._input = self._input, None
        if started is None:
            return
        if len(self._pending) < self._max_pending:
            self._open = [started, marked, self._event(), None]
        else:
            self._spare_events += [e for e in (started, marked) if e is not None]
        self._count_finished()

    def communication_done(self) -> None:
        """Mark the end of the exposed communication that followed the stopped step."""
        if not self._cuda:
            super().communication_done()
        elif self._open is not None and self._open[3] is None:
            self._open[3] = self._event()

    def abandon(self) -> None:
        """Forget the started step without counting it."""
        super().abandon()
        self._spare_events += [e for e in (self._started, self._input) if e is not None]
        self._started = self._input = None

    def poll(self) -> None:
        """Count the CUDA steps the GPU has finished since the last poll (never blocks); the
        latest stopped step takes no later `communication_done`."""
        self._close_open()
        self._count_finished()

    def _count_finished(self) -> None:
        while self._pending and (self._pending[0][3] or self._pending[0][2]).query():
            begin, marked, end, communicated = self._pending.popleft()
            waited = begin.elapsed_time(marked) / 1000.0 if marked is not None else 0.0
            self.count(begin.elapsed_time(end) / 1000.0, waited)
            if communicated is not None:
                self.count_communication(end.elapsed_time(communicated) / 1000.0)
            self._spare_events += [e for e in (begin, marked, end, communicated) if e is not None]

    def close(self) -> None:
        """Wait for the steps still on the GPU, publish them, release the endpoint and files."""
        self._close_open()
        if self._pending:
            last = self._pending[-1]
            (last[3] or last[2]).synchronize()
            self._count_finished()
        super().close()

    def _close_open(self) -> None:
        """The stopped step takes no more marks: queue it to be read."""
        if self._open is not None:
            self._pending.append(self._open)
            self._open = None

    def _event(self) -> Any:
        event = self._spare_events.pop() if self._spare_events else _new_event(enable_timing=True)
        event.record()
        return event


def step_timer(
    device: torch.device | str | None = None, env: Mapping[str, str] | None = None
) -> StepTimer:
    """A timer publishing to this pod's shared statistics; local rank 0 serves `/metrics`."""
    return pod_timer(lambda publish, on_close: StepTimer(device, publish, on_close), env)


def stop_at_gradient_sync(
    ddp_model: Any, timer: StepTimer, delay: Callable[[], float] | None = None
) -> None:
    """Register a DDP comm hook that stops `timer` when the last gradient bucket is ready.

    The step then ends where this rank's forward and backward end, before it waits for the
    other ranks, so a slow node shows a larger T_i than its peers; call
    `timer.communication_done()` after `backward()` returns to measure the exposed
    communication. Call `timer.start()` at the start of each step; the hook replaces DDP's
    default all-reduce with the same one. `delay`: seconds of a deliberate sleep before the
    last bucket's all-reduce, asked each step (a slow network, for the example trainer's
    `--inject`).
    (No `from __future__ import annotations` here: DDP compares the hook's annotations.)
    """
    from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook

    def hook(process_group: Any, bucket: GradBucket) -> torch.futures.Future[torch.Tensor]:
        if bucket.is_last():
            timer.stop()
            if delay is not None:
                time.sleep(delay())
        return allreduce_hook(process_group, bucket)

    ddp_model.register_comm_hook(None, hook)
