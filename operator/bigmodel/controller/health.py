"""The operator's liveness: every per-resource daemon beats whenever it looks at its resource,
saying when it will look again at the latest; /healthz fails when the API is unreachable or a
daemon is overdue. Daemons that sleep until a watch event or a timer wakes them may sleep long:
they are stuck only once they miss their own next look by `STALE_SECONDS`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import kopf

if TYPE_CHECKING:
    from bigmodel.controller.context import OperatorContext

STALE_SECONDS = 60.0
"""A daemon this late for its next look at its resource is stuck: /healthz fails."""


@dataclass
class Heartbeats:
    """When each running daemon is due to look at its resource again, by a key (`kind/uid`)."""

    stale_after: float = STALE_SECONDS
    due: dict[str, float] = field(default_factory=dict)
    """Monotonic time by which each daemon will have looked again."""

    def beat(self, key: str, next_within: float = 0.0) -> None:
        """The daemon `key` has just looked at its resource and will look again within
        `next_within` seconds (sooner when something changes)."""
        self.due[key] = time.monotonic() + next_within

    def forget(self, key: str) -> None:
        """The daemon `key` has ended."""
        self.due.pop(key, None)

    def stuck(self, now: float | None = None) -> list[str]:
        """Keys of the daemons more than `stale_after` seconds late for their next look."""
        now = time.monotonic() if now is None else now
        return [key for key, due in self.due.items() if now - due > self.stale_after]


@kopf.on.probe(id="daemons")
async def daemons_alive(memo: Any, **_: Any) -> int:
    """Fail /healthz when the API is unreachable or a daemon is stuck; else count them."""
    shared: OperatorContext = memo.context
    await shared.kube.request("GET", "/version")
    stuck = shared.heartbeats.stuck()
    if stuck:
        raise kopf.PermanentError(f"daemons overdue by over {STALE_SECONDS:g}s: {stuck}")
    return len(shared.heartbeats.due)
