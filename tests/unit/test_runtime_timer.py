"""The step timer: wall time on CPU, CUDA events on GPUs, one /metrics per pod."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch
from prometheus_client.parser import text_string_to_metric_families

from bigmodel.runtime import timer as timer_module
from bigmodel.runtime.exposition import LOCAL_RANK_STEP_SECONDS, NODE_STEP_SECONDS, STEPS_TOTAL
from bigmodel.runtime.stats import RankStats
from bigmodel.runtime.timer import StepTimer, step_timer

cuda_only = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="the CUDA event path needs a GPU"
)


def test_a_step_measures_wall_time_on_cpu() -> None:
    timer = StepTimer()
    with timer.step():
        time.sleep(0.02)
    assert timer.stats.steps == 1
    assert 0.02 <= timer.stats.last < 1.0


def test_the_decorator_times_each_call_and_returns_its_result() -> None:
    timer = StepTimer()
    double = timer.timed(lambda x: 2 * x)
    assert [double(1), double(2)] == [2, 4]
    assert timer.stats.steps == 2


def test_a_step_that_raises_is_not_counted() -> None:
    timer = StepTimer()
    with pytest.raises(RuntimeError), timer.step():
        raise RuntimeError("boom")
    timer.stop()
    assert timer.stats.steps == 0


def test_the_first_step_and_each_loss_are_published_at_once() -> None:
    published: list[RankStats] = []
    timer = StepTimer(publish=published.append)
    with timer.step():
        pass
    timer.set_loss(2.5)
    assert [s.steps for s in published] == [1, 1]
    assert published[-1].loss == 2.5


def test_close_runs_the_cleanup_once() -> None:
    closed: list[bool] = []
    with StepTimer(on_close=lambda: closed.append(True)) as timer:
        timer.close()
    assert closed == [True]


@cuda_only
def test_cuda_steps_are_timed_by_events_and_read_without_waiting() -> None:
    timer = StepTimer("cuda")
    with timer.step():
        # Keeps the GPU busy for about half a second.
        torch.cuda._sleep(1_000_000_000)  # type: ignore[no-untyped-call]
    assert timer.stats.steps == 0  # stop() returned while the GPU was still in the step
    timer.close()
    assert timer.stats.steps == 1
    assert 0.1 < timer.stats.last < 5.0


@cuda_only
def test_cuda_steps_are_counted_as_the_gpu_finishes_them() -> None:
    timer = StepTimer("cuda")
    x = torch.randn(1024, 1024, device="cuda")
    for _ in range(20):
        with timer.step():
            x = (x @ x).tanh()
    torch.cuda.synchronize()
    timer.poll()
    assert timer.stats.steps == 20


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_local_rank_zero_serves_the_slowest_rank_of_the_pod(tmp_path: Path) -> None:
    pod = {
        "LOCAL_WORLD_SIZE": "2",
        "BIGMODEL_METRICS_HOST": "127.0.0.1",
        "BIGMODEL_METRICS_PORT": str(_free_port()),
        "BIGMODEL_STATS_DIR": str(tmp_path),
    }
    rank0 = step_timer(env={**pod, "LOCAL_RANK": "0"})
    rank1 = step_timer(env={**pod, "LOCAL_RANK": "1"})
    try:
        with rank0.step():
            pass
        with rank1.step():
            time.sleep(0.05)
        url = f"http://127.0.0.1:{pod['BIGMODEL_METRICS_PORT']}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
    finally:
        rank1.close()
        rank0.close()
    samples = {
        (s.name, tuple(s.labels.values())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[(NODE_STEP_SECONDS, ())] == samples[(LOCAL_RANK_STEP_SECONDS, ("1",))]
    assert samples[(NODE_STEP_SECONDS, ())] >= 0.05
    assert samples[(STEPS_TOTAL, ())] == 1
    assert list(tmp_path.iterdir()) == []  # closed timers leave no files behind
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, timeout=1)  # and free the port


def test_a_busy_metrics_port_does_not_stop_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        env = {
            "BIGMODEL_METRICS_HOST": "127.0.0.1",
            "BIGMODEL_METRICS_PORT": str(busy.getsockname()[1]),
            "BIGMODEL_STATS_DIR": str(tmp_path),
        }
        with step_timer(env=env) as timer, timer.step():
            pass
    assert "/metrics not served" in capsys.readouterr().err


class _FakeEvent:
    """A CUDA event stand-in on a fake GPU clock: recorded at `gpu.now`, done once the
    fake GPU has run past it."""

    def __init__(self, gpu: _FakeGpu) -> None:
        self.gpu = gpu
        self.at = 0.0

    def record(self) -> None:
        self.at = self.gpu.now

    def query(self) -> bool:
        return self.gpu.done >= self.at

    def synchronize(self) -> None:
        self.gpu.done = max(self.gpu.done, self.at)

    def elapsed_time(self, end: _FakeEvent) -> float:
        return (end.at - self.at) * 1000.0  # milliseconds, as CUDA's


class _FakeGpu:
    def __init__(self) -> None:
        self.now = 0.0
        self.done = -1.0


def test_cuda_events_time_the_parts_of_a_step_without_waiting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gpu = _FakeGpu()
    monkeypatch.setattr(timer_module, "_new_event", lambda enable_timing: _FakeEvent(gpu))
    timer = StepTimer("cuda")
    for _ in range(3):
        timer.start()
        gpu.now += 0.2
        timer.input_ready()
        gpu.now += 0.3
        timer.stop()
        gpu.now += 0.1
        timer.communication_done()
        gpu.now += 0.01
    assert timer.stats.steps == 0  # the GPU has not finished any: nothing waited for
    gpu.done = gpu.now
    timer.poll()
    stats = timer.stats
    assert stats.steps == 3
    assert stats.last == pytest.approx(0.5)
    assert stats.input_ewma == pytest.approx(0.2)
    assert stats.communication_ewma == pytest.approx(0.1)
    assert stats.communication_steps == 3
    timer.close()


def test_cuda_close_waits_for_the_last_step_and_its_communication(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gpu = _FakeGpu()
    monkeypatch.setattr(timer_module, "_new_event", lambda enable_timing: _FakeEvent(gpu))
    timer = StepTimer("cuda")
    timer.start()
    gpu.now += 0.4
    timer.stop()
    gpu.now += 0.2
    timer.communication_done()
    timer.close()
    assert (timer.stats.steps, timer.stats.communication_steps) == (1, 1)
    assert timer.stats.communication_ewma == pytest.approx(0.2)
