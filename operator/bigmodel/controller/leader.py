"""Leader election among the operator's replicas, on a `coordination.k8s.io/v1` Lease.

Interface (what the controller's loop uses)::

    settings = OperatorSettings.read(os.environ, namespaces).election
    elector = LeaderElector(kube, settings, new_identity())
    task = asyncio.create_task(elector.run(on_started, on_stopped))
    ...
    task.cancel()  # clean shutdown: calls on_stopped, then releases the lease

- `run(on_started, on_stopped)` runs until cancelled. It awaits `on_started()` each time
  this replica becomes the leader and `on_stopped()` each time it stops leading: when it
  could not renew within the renew deadline, when another replica holds the lease, and on
  cancellation. Both must return promptly (start or stop the workers, do not run them):
  the elector does not renew while they run. After stepping down, the replica is a
  candidate again.
- `is_leader` is True only while this replica holds a lease it renewed less than the renew
  deadline ago; check it before each write for the strictest guarantee. `leading` is an
  `asyncio.Event` set while leading (wait for it to start work).
- With `settings.enabled` False (one replica, `BIGMODEL_LEADER_ELECTION=false`), `run`
  leads at once and uses no lease.

Guarantee: at most one leader at any instant, provided each replica stops writing when
`on_stopped` is called (or `is_leader` turns False). A leader steps down `renew_deadline`
after the start of its last successful renewal; another replica takes over only
`lease_duration` after it saw that renewal, later by `lease_duration - renew_deadline`.
A standby takes over a crashed leader within about `lease_duration + retry_period`, and at
once (within `retry_period`) when the leader released the lease on a clean shutdown.

The leader's state is exported as the gauge `bigmodel_operator_leader` (1 leading, 0 not)
and each transition is logged.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bigmodel.controller.election import (
    JITTER,
    LEASE_API_VERSION,
    Action,
    ElectionSettings,
    LeaseRecord,
    decide,
    lease_object,
    lease_spec,
    released_spec,
)
from bigmodel.controller.k8s import API_FAILURES, ApiError, Kube, resource_path

Callback = Callable[[], Awaitable[None]]
HOLDING = (Action.CREATE, Action.ACQUIRE, Action.RENEW)
"""The actions after which, written, this replica holds the lease."""
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Round:
    """One look at the lease: what was read (None: no lease) and the action decided."""

    lease: LeaseRecord | None
    action: Action
    began: float
    """Monotonic time the round began (before the lease was read)."""


class LeaderElector:
    """Campaigns for, holds and renews the operator's Lease (see the module docstring)."""

    def __init__(self, kube: Kube, settings: ElectionSettings, identity: str) -> None:
        self.kube = kube
        self.settings = settings
        self.identity = identity
        self.leading = asyncio.Event()
        """Set while this replica leads."""
        self._renewed_at: float | None = None
        """Monotonic time the last successful renewal began; None while not leading."""
        self._observed: LeaseRecord | None = None
        self._observed_at = 0.0
        """Monotonic time this replica first saw the `_observed` record."""
        self._leases = resource_path(LEASE_API_VERSION, "leases", settings.lease_namespace)
        self._path = f"{self._leases}/{settings.lease_name}"

    @property
    def lease(self) -> str:
        """`namespace/name` of the lease, for messages."""
        return f"{self.settings.lease_namespace}/{self.settings.lease_name}"

    @property
    def renewed_at(self) -> float | None:
        """Monotonic time the last successful acquisition or renewal began (None while a
        candidate): the leader's deadline is this plus the renew deadline."""
        return self._renewed_at

    @property
    def is_leader(self) -> bool:
        """Whether this replica leads now: it holds the lease and renewed it less than the
        renew deadline ago (False as soon as the deadline passes, even before the elector's
        loop notices)."""
        if not self.settings.enabled:
            return self.leading.is_set()
        renewed = self._renewed_at
        return renewed is not None and time.monotonic() - renewed < self.settings.renew_deadline

    async def run(self, on_started: Callback, on_stopped: Callback) -> None:
        """Campaign and lead until cancelled (see the module docstring)."""
        try:
            if self.settings.enabled:
                await self._campaign(on_started, on_stopped)
            else:
                await self._start(on_started, "leader election disabled")
                await asyncio.Event().wait()  # until cancelled
        finally:
            await self._stop(on_stopped, "shutting down")
            if self.settings.enabled and self.settings.release_on_cancel and self._holding():
                await self.release()

    async def _campaign(self, on_started: Callback, on_stopped: Callback) -> None:
        while True:
            await self._round(on_started, on_stopped)
            await asyncio.sleep(self._pause())

    async def _round(self, on_started: Callback, on_stopped: Callback) -> None:
        """One try to acquire or renew, bounded by the renew deadline while leading; steps
        down when the deadline passed or another replica holds the lease."""
        try:
            async with asyncio.timeout(self._time_left()):
                done = await self.act(await self.observe())
        except (*API_FAILURES, TimeoutError) as exc:
            log.warning("lease %s: could not acquire or renew: %s", self.lease, exc or "timeout")
            done = None
        if done is Action.STEP_DOWN or (done is None and self._lapsed()):
            reason = (
                f"another replica holds the lease ({self._observed.holder})"
                if self._observed is not None and self._observed.holder not in ("", self.identity)
                else f"not renewed within {self.settings.renew_deadline:g}s"
            )
            self._renewed_at = None
            await self._stop(on_stopped, reason)
        elif done in HOLDING and not self.leading.is_set():
            await self._start(on_started, f"{done.value}: holds the lease")

    async def observe(self) -> Round:
        """Read the lease and decide this round's action (the first half of a try). A
        renewal counts from before the read; a record seen counts from after it (the later
        time, for both: a write may land while the read is in flight)."""
        began = time.monotonic()
        try:
            found = await self.kube.request("GET", self._path, expected=(404,))
        except ApiError as exc:
            if exc.status != 404:
                raise
            lease = None
        else:
            lease = LeaseRecord.from_lease(found)
        seen = time.monotonic()
        if lease is not None:
            self._see(lease, seen)
        action = decide(
            lease, self._observed_at, self.identity, seen, self._renewed_at, self.settings
        )
        return Round(lease, action, began)

    async def act(self, round_: Round) -> Action | None:
        """Write what `round_` decided (the second half of a try): the action taken, or None
        when the write lost a race (409: another replica wrote the lease since it was read)
        or there was nothing to write."""
        action = round_.action
        if action is Action.WAIT:
            return None
        if action is Action.STEP_DOWN:
            return action
        spec = lease_spec(action, round_.lease, self.identity, self.settings)
        version = round_.lease.resource_version if round_.lease else ""
        lease = lease_object(self.settings, spec, version)
        try:
            if round_.lease is None:
                written = await self.kube.request("POST", self._leases, lease, expected=(409,))
            else:
                written = await self.kube.request("PUT", self._path, lease, expected=(409,))
        except ApiError as exc:
            if exc.status != 409:
                raise
            log.debug("lease %s: another replica wrote it first", self.lease)
            return None
        self._renewed_at = round_.began
        self._see(LeaseRecord.from_lease(written), round_.began)
        return action

    async def try_acquire_or_renew(self) -> bool:
        """One try (read, decide, write); True when this replica holds the lease after it.
        Leading itself (the callbacks, `leading`) is `run`'s business."""
        return await self.act(await self.observe()) in HOLDING

    async def release(self) -> None:
        """Give the lease up if this replica holds it, so that a standby takes over at once;
        failures are logged (the lease then expires as after a crash)."""
        try:
            async with asyncio.timeout(self.settings.renew_deadline):
                found = LeaseRecord.from_lease(await self.kube.request("GET", self._path))
                if found.holder != self.identity:
                    return
                lease = lease_object(self.settings, released_spec(found), found.resource_version)
                await self.kube.request("PUT", self._path, lease, expected=(409,))
        except (*API_FAILURES, TimeoutError) as exc:
            log.warning("lease %s: could not release it: %s", self.lease, exc or "timeout")
        else:
            log.info("lease %s: released by %s", self.lease, self.identity)

    def _see(self, lease: LeaseRecord, now: float) -> None:
        """Note the record read at `now`: a changed record restarts the expiry clock."""
        if not lease.same_record(self._observed):
            if self._observed is None or lease.holder != self._observed.holder:
                log.info("lease %s: held by %s", self.lease, lease.holder or "nobody")
            self._observed = lease
            self._observed_at = now

    def _time_left(self) -> float | None:
        """Seconds left before the renew deadline while leading (None: not leading)."""
        if self._renewed_at is None:
            return None
        return max(self._renewed_at + self.settings.renew_deadline - time.monotonic(), 0.0)

    def _holding(self) -> bool:
        """Whether the lease, as last seen, names this replica."""
        return self._observed is not None and self._observed.holder == self.identity

    def _lapsed(self) -> bool:
        return self._renewed_at is not None and not self.is_leader

    def _pause(self) -> float:
        """The leader renews every retry period, never sleeping past its renew deadline; a
        candidate waits a jittered retry period."""
        left = self._time_left()
        if left is not None:
            return min(self.settings.retry_period, left)
        return self.settings.retry_period * random.uniform(1.0, JITTER)

    async def _start(self, on_started: Callback, reason: str) -> None:
        log.info("lease %s: %s started leading (%s)", self.lease, self.identity, reason)
        self._gauge(1)
        self.leading.set()
        await on_started()

    async def _stop(self, on_stopped: Callback, reason: str) -> None:
        if not self.leading.is_set():
            return
        log.info("lease %s: %s stopped leading (%s)", self.lease, self.identity, reason)
        self.leading.clear()
        self._gauge(0)
        await on_stopped()

    def _gauge(self, value: int) -> None:
        if self.kube.metrics is not None:
            self.kube.metrics.leader.set(value)
