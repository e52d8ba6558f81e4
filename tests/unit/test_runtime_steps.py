"""The framework-neutral step timer (`bigmodel.runtime.steps`): begin/end or `with step()`,
wall time, the pod's /metrics, and no framework imported."""

from __future__ import annotations

import math
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bigmodel.runtime.exposition import STEPS_TOTAL
from bigmodel.runtime.machine import MachineSample
from bigmodel.runtime.stats import RankStats
from bigmodel.runtime.steps import WallStepTimer, step_timer


def test_begin_and_end_time_one_step() -> None:
    published: list[RankStats] = []
    timer = WallStepTimer(publish=published.append)
    timer.begin()
    timer.end()
    assert [s.steps for s in published] == [1]
    assert published[0].last > 0


def test_steps_within_the_publish_interval_are_published_together() -> None:
    published: list[RankStats] = []
    timer = WallStepTimer(publish=published.append, publish_interval=math.inf)
    for _ in range(5):
        with timer.step():
            pass
    assert [s.steps for s in published] == [1]  # the first at once, the others counted
    timer.publish()
    assert [s.steps for s in published] == [1, 5]


def test_a_step_is_published_once_the_interval_has_passed() -> None:
    published: list[RankStats] = []
    timer = WallStepTimer(publish=published.append, publish_interval=0.0)
    for _ in range(3):
        with timer.step():
            pass
    assert [s.steps for s in published] == [1, 2, 3]


def test_close_publishes_the_steps_not_yet_published_then_nothing_more() -> None:
    published: list[RankStats] = []
    timer = WallStepTimer(publish=published.append, publish_interval=math.inf)
    for _ in range(4):
        with timer.step():
            pass
    timer.close()
    timer.publish()
    timer.close()
    assert [s.steps for s in published] == [1, 4]


def test_end_without_begin_counts_nothing() -> None:
    timer = WallStepTimer()
    timer.end()
    assert timer.stats.steps == 0


def test_a_step_body_that_raises_is_not_counted() -> None:
    timer = WallStepTimer()
    with pytest.raises(ValueError), timer.step():
        raise ValueError("bad batch")
    timer.end()
    assert timer.stats.steps == 0


def test_a_scrape_of_the_pod_timer_sees_every_step_counted_so_far(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        "BIGMODEL_METRICS_HOST": "127.0.0.1",
        "BIGMODEL_METRICS_PORT": str(port),
        "BIGMODEL_STATS_DIR": str(tmp_path),
    }
    with step_timer(env=env) as timer:  # publishes the first step, then on the scrape
        for _ in range(3):
            with timer.step():
                pass
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    steps = [
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == STEPS_TOTAL
    ]
    assert steps == [3]


def test_the_neutral_timer_and_the_keras_callback_module_import_no_framework() -> None:
    code = (
        "import sys, bigmodel.runtime.steps, bigmodel.runtime.keras;"
        "print(sorted(m for m in ('torch', 'tensorflow', 'keras') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_step_splits_into_input_wait_and_compute_then_exposed_communication() -> None:
    timer = WallStepTimer()
    timer.start()
    time.sleep(0.05)
    timer.input_ready()
    time.sleep(0.01)
    timer.stop()
    time.sleep(0.02)
    timer.communication_done()
    stats = timer.stats
    assert 0.05 <= stats.input_ewma < stats.last
    assert stats.compute_ewma == pytest.approx(stats.last - stats.input_ewma)
    assert stats.communication_steps == 1 and stats.communication_ewma >= 0.02


def test_a_loop_that_marks_no_parts_reports_its_step_as_compute() -> None:
    timer = WallStepTimer()
    with timer.step():
        pass
    timer.communication_done()
    timer.communication_done()  # only once per stopped step
    stats = timer.stats
    assert (stats.input_ewma, stats.compute_ewma) == (0.0, stats.ewma)
    assert stats.communication_steps == 1


def test_marks_outside_a_step_are_ignored() -> None:
    timer = WallStepTimer()
    timer.input_ready()
    timer.communication_done()
    assert timer.stats == RankStats()


def test_the_machine_sample_is_published_with_the_steps() -> None:
    published: list[RankStats] = []
    timer = WallStepTimer(publish=published.append)
    timer.set_machine(MachineSample(samples=4, sched_delay=0.5))
    timer.publish()
    assert published[-1].machine.sched_delay == 0.5


def test_the_pod_timer_samples_the_machine_unless_turned_off(tmp_path: Path) -> None:
    env = {"BIGMODEL_STATS_DIR": str(tmp_path), "BIGMODEL_METRICS_PORT": "1", "LOCAL_RANK": "1",
           "LOCAL_WORLD_SIZE": "2"}  # fmt: skip
    threads = {t.name for t in threading.enumerate()}
    with step_timer(env):
        assert "bigmodel-sampler" in {t.name for t in threading.enumerate()} - threads
    assert "bigmodel-sampler" not in {t.name for t in threading.enumerate()}
    with step_timer({**env, "BIGMODEL_MACHINE_SAMPLER": "0"}):
        assert "bigmodel-sampler" not in {t.name for t in threading.enumerate()}
