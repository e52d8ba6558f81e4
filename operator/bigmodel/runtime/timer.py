"""The in-pod step timer: per-step times without stalling the GPU, published for `/metrics`.

    from bigmodel.runtime.timer import step_timer
    timer = step_timer(device)          # local rank 0 also serves /metrics
    for batch in loader:
        with timer.step():
            train_step(batch)

On CUDA a step is timed by two CUDA events recorded on the current stream; finished pairs are
read with the non-blocking `Event.query()` after later steps, from a bounded ring of pending
pairs, so the step path never waits for the GPU (a step is skipped, not waited for, if the
ring is full). On CPU a step is wall time (`bigmodel.runtime.steps`, the framework-neutral
timer it extends). Under synchronous data parallelism every rank's
wall step converges to the slowest rank's (all wait at the gradient all-reduce); to tell a
straggling node apart, `stop_at_gradient_sync` ends each step where local work ends.
Settings (metrics port 9400 by default, bind address, stats directory) come from the
environment: see `bigmodel.runtime.environment`; metric names: `bigmodel.runtime.exposition`.
"""

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
        self._pending: deque[tuple[Any, Any]] = deque()
        self._spare_events: list[Any] = []
        self._started: Any = None

    def start(self) -> None:
        """Mark the start of a step (a second start replaces the first)."""
        if not self._cuda:
            super().start()
            return
        self._started = self._event()

    def stop(self) -> None:
        """Mark the end of the started step; without a started step, do nothing."""
        if not self._cuda:
            super().stop()
            return
        started, self._started = self._started, None
        if started is None:
            return
        if len(self._pending) < self._max_pending:
            self._pending.append((started, self._event()))
        else:
            self._spare_events.append(started)
        self.poll()

    def abandon(self) -> None:
        """Forget the started step without counting it."""
        super().abandon()
        self._started = None

    def poll(self) -> None:
        """Count the CUDA steps the GPU has finished since the last poll (never blocks)."""
        while self._pending and self._pending[0][1].query():
            begin, end = self._pending.popleft()
            self.count(begin.elapsed_time(end) / 1000.0)
            self._spare_events += (begin, end)

    def close(self) -> None:
        """Wait for the steps still on the GPU, publish them, release the endpoint and files."""
        if self._pending:
            self._pending[-1][1].synchronize()
            self.poll()
        super().close()

    def _event(self) -> Any:
        event = self._spare_events.pop() if self._spare_events else _new_event(enable_timing=True)
        event.record()
        return event


def step_timer(
    device: torch.device | str | None = None, env: Mapping[str, str] | None = None
) -> StepTimer:
    """A timer publishing to this pod's shared statistics; local rank 0 serves `/metrics`."""
    return pod_timer(lambda publish, on_close: StepTimer(device, publish, on_close), env)


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
