"""preStop hooks: sleep within the grace period, handlers through the container's probe
runner, nothing without a hook."""

from __future__ import annotations

import asyncio

from kubesandbox.kubelet.hooks import pre_stop
from kubesandbox.objects import Obj


class Attempts:
    def __init__(self) -> None:
        self.seen: list[Obj] = []

    async def __call__(self, probe: Obj) -> bool:
        self.seen.append(probe)
        return True


def test_a_sleep_hook_waits_at_most_the_budget() -> None:
    hooked = {"name": "c", "lifecycle": {"preStop": {"sleep": {"seconds": 30}}}}
    # Raises TimeoutError if the hook slept the 30 s it asks for instead of the budget.
    asyncio.run(asyncio.wait_for(pre_stop(hooked, Attempts(), 0.05), timeout=10))


def test_an_exec_hook_runs_through_the_containers_runner_with_the_budget_as_timeout() -> None:
    attempts = Attempts()
    hook = {"exec": {"command": ["sh", "-c", "true"]}}
    asyncio.run(pre_stop({"name": "c", "lifecycle": {"preStop": hook}}, attempts, 7.0))
    assert attempts.seen == [{**hook, "timeoutSeconds": 7.0}]


def test_no_hook_and_no_budget_run_nothing() -> None:
    attempts = Attempts()
    asyncio.run(pre_stop({"name": "c"}, attempts, 5.0))
    hooked = {"name": "c", "lifecycle": {"preStop": {"httpGet": {"port": 80}}}}
    asyncio.run(pre_stop(hooked, attempts, 0))
    assert attempts.seen == []
