"""Operator settings read from the environment at startup (tests shorten the timers)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

from bigmodel.settings import seconds_from_env


@dataclass(frozen=True)
class Timing:
    """Timers of the job controller, in seconds; each is `BIGMODEL_<NAME>` in the env."""

    restart_backoff: float = 10.0
    """Back-off before the first gang restart; it doubles with each restart, like a Job's."""
    restart_backoff_max: float = 360.0
    """Longest back-off between two restarts."""
    elastic_grace: float = 60.0
    """How long an elastic job may run below minNodes before its gang restarts."""
    settle: float = 0.5
    """After a change wakes a job, how long to let the changes that come with it arrive (a
    gang's pods change together) before looking: one look and one status write for them."""
    resync: float = 300.0
    """Longest pause between two looks at a job: a safety net, as pod changes, spec changes
    and the plan's timers wake it when something is to be done."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Timing:
        """Defaults overridden by `BIGMODEL_RESTART_BACKOFF`, `BIGMODEL_ELASTIC_GRACE`, ..."""
        defaults = cls()
        return cls(
            **{
                f.name: seconds_from_env(
                    env, f"BIGMODEL_{f.name.upper()}", getattr(defaults, f.name)
                )
                for f in fields(cls)
            }
        )

    def backoff(self, restarts: int) -> float:
        """Seconds to wait before restart number `restarts` (1, 2, ...)."""
        return float(
            min(self.restart_backoff * 2 ** max(restarts - 1, 0), self.restart_backoff_max)
        )
