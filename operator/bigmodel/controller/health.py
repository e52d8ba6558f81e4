"""The operator's liveness: every per-resource daemon beats once per look at its resource;
/healthz fails when the API is unreachable or a daemon has not looked for too long."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import kopf

if TYPE_CHECKING:
    from bigmodel.controller.context import OperatorContext

STALE_SECONDS = 60.0
"""A daemon that has not looked at its resource for this long is stuck: /healthz fails."""


@dataclass
class Heartbeats:
    """The last beat of each running daemon, by a key (`kind/uid`)."""

    stale_after: float = STALE_SECONDS
    last: dict[str, float] = field(default_factory=dict)

    def beat(self, key: str) -> None:
        """The daemon `key` has just looked at its resource."""
        self.last[key] = time.monotonic()

    def forget(self, key: str) -> None:
        """The daemon `key` has ended."""
        self.last.pop(key, None)

    def stuck(self, now: float | None = None) -> list[str]:
        """Keys of the daemons whose last beat is older than `stale_after`."""
        now = time.monotonic() if now is None else now
        return [key for key, beat in self.last.items() if now - beat > self.stale_after]


@kopf.on.probe(id="daemons")
async def daemons_alive(memo: Any, **_: Any) -> int:
    """Fail /healthz when the API is unreachable or a daemon is stuck; else count them."""
    shared: OperatorContext = memo.context
    await shared.kube.request("GET", "/version")
    stuck = shared.heartbeats.stuck()
    if stuck:
        raise kopf.PermanentError(f"daemons stuck for over {STALE_SECONDS:g}s: {stuck}")
    return len(shared.heartbeats.last)
