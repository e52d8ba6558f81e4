"""A task engine worker's totals and its `/metrics` page, as the operator reads them."""

from __future__ import annotations

import threading

from bigmodel.runtime.tasks import (
    TASK_SECONDS_COUNT,
    TASK_SECONDS_SUM,
    TaskTally,
    TaskTotals,
    render,
)
from bigmodel.telemetry.textformat import Series, read_series


def test_the_tally_counts_each_task_and_adds_its_seconds() -> None:
    tally = TaskTally()
    tally.add(0.25)
    tally.add(0.5)
    assert tally.totals() == TaskTotals(tasks=2, seconds=0.75)


def test_tasks_added_from_many_threads_are_all_counted() -> None:
    tally = TaskTally()
    threads = [
        threading.Thread(target=lambda: [tally.add(0.001) for _ in range(1000)]) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert tally.totals().tasks == 8000


def test_the_page_carries_the_sum_and_count_the_operator_reads() -> None:
    page = render(TaskTotals(tasks=3, seconds=1.5))
    found = read_series(page, (Series(TASK_SECONDS_SUM), Series(TASK_SECONDS_COUNT)))
    assert found == {Series(TASK_SECONDS_SUM): 1.5, Series(TASK_SECONDS_COUNT): 3}
    assert "# TYPE bigmodel_worker_task_seconds summary" in page
