"""The framework-neutral step timer (`bigmodel.runtime.steps`): begin/end or `with step()`,
wall time, the pod's /metrics, and no framework imported."""

from __future__ import annotations

import math
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bigmodel.runtime.exposition import STEPS_TOTAL
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
