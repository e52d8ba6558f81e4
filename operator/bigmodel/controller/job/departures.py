"""One job's node pods on their way out of the cluster, in one vocabulary (pure):

- *leaving*: its deletion was requested (by this controller, or a `deletionTimestamp` shows
  it) and the cache still has it: no longer a node of the gang, but its member waits for it.
- *gone*: out of the cluster. The cache learns it from the pod's DELETED watch event and
  drops it; a pod whose DELETED event the watch missed (kopf resumes after a `410 Gone` or a
  dropped connection by listing again, and learns nothing of a pod deleted in between) stays
  in the cache, leaving forever, and a gang restart would wait for it forever (found by
  `tests/integration/test_chaos.py`). So a pod leaving for LOOKUP_SECONDS is looked up, with
  one LIST of the job's pods at most that often, and is gone once the API no longer has it.
- *reason*: why the cluster stopped a gone pod (its last state's disruption: `Evicted`,
  `DeletionByTaintManager`, ...; None: none), taken from its DELETED event. The job's next
  look consumes it; a reason is then kept for its member until the member has a pod again.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from bigmodel.controller.job.pods import NodePod
from bigmodel.manifests.frameworks import Member

LOOKUP_SECONDS = 10.0
"""Longer than a pod takes to go once its processes stop; shorter than anyone waits."""


@dataclass
class Departures:
    """The node pods of one job that are leaving or gone, and why the cluster stopped them."""

    leaving: dict[str, float] = field(default_factory=dict)
    """uids of the pods leaving, with since when (monotonic seconds)."""
    missed: set[str] = field(default_factory=set)
    """uids of pods a lookup found gone that the cache still has (their DELETED was missed)."""
    gone: dict[Member, str | None] = field(default_factory=dict)
    """Members whose pods are gone since the job's last look, with their reasons."""
    reasons: dict[Member, str] = field(default_factory=dict)
    """Why the cluster stopped the last pod of each member that has no pod now."""
    looked_up: float = -math.inf
    """When the latest lookup was made (monotonic seconds)."""

    def went(self, member: Member, reason: str | None) -> None:
        """A pod of `member` is gone (its DELETED event), stopped by the cluster for `reason`."""
        self.gone[member] = reason

    def requested(self, uid: str, now: float) -> None:
        """This controller has asked to delete the pod `uid`: it is leaving from `now` on,
        before the cache shows its deletionTimestamp."""
        self.leaving.setdefault(uid, now)

    def look(self, cached: Sequence[NodePod], now: float) -> set[Member]:
        """The job looks at its pods in the cache at `now`: consume the gone pods' reasons,
        note the pods leaving; returns the members whose pods are gone since the last look."""
        here = {p.member for p in cached}
        gone, self.gone = self.gone, {}
        reasons: dict[Member, str | None] = {**self.reasons, **gone}
        self.reasons = {m: why for m, why in reasons.items() if why and m not in here}
        self.leaving = {
            p.uid: self.leaving.get(p.uid, now)
            for p in cached
            if p.leaving or p.uid in self.leaving
        }
        self.missed &= {p.uid for p in cached}
        return set(gone)

    def due(self, now: float) -> set[str]:
        """uids of the pods leaving for LOOKUP_SECONDS, to look up now (at most one lookup
        per LOOKUP_SECONDS: a lookup returned here counts as made)."""
        overdue = {
            uid
            for uid, since in self.leaving.items()
            if now - since >= LOOKUP_SECONDS and uid not in self.missed
        }
        if not overdue or now - self.looked_up < LOOKUP_SECONDS:
            return set()
        self.looked_up = now
        return overdue

    def found(self, looked_up: set[str], listed: set[str]) -> None:
        """A lookup of the uids `looked_up` listed the job's pods `listed`: the others are gone."""
        self.missed |= looked_up - listed

    def seen(self, cached: Sequence[NodePod]) -> list[NodePod]:
        """The job's pods as its decisions see them: those leaving marked so, those gone
        dropped."""
        return [
            replace(p, leaving=True) if p.uid in self.leaving and not p.leaving else p
            for p in cached
            if p.uid not in self.missed
        ]

    def next_lookup(self, now: float) -> float | None:
        """Seconds from `now` until a pod leaving is due to be looked up (None: none is
        leaving): the job must look again by then, as no watch event may ever come for it."""
        waiting = [since for uid, since in self.leaving.items() if uid not in self.missed]
        if not waiting:
            return None
        return max(0.0, max(min(waiting), self.looked_up) + LOOKUP_SECONDS - now)
