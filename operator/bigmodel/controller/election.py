"""Leader election on a `coordination.k8s.io/v1` Lease, the pure part: the settings, the
lease record, and the decision each round of the elector takes (see `leader.py`).

The semantics are client-go's `leaderelection`: a candidate takes the lease when it is free
or expired, the holder renews it every retry period, and a holder that has not renewed
within the renew deadline steps down, which is before any other candidate can take the
lease (renew deadline < lease duration). Expiry is judged on the candidate's own monotonic
clock, from the moment it saw the lease record change (as client-go does), never by
comparing the holder's `renewTime` with the local wall clock: clock skew between nodes can
then not make two leaders.
"""

from __future__ import annotations

import enum
import math
import os
import socket
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bigmodel.settings import seconds_from_env

ENV_PREFIX = "BIGMODEL_LEADER_ELECTION"
"""`BIGMODEL_LEADER_ELECTION` (true/false) and `BIGMODEL_LEADER_ELECTION_<SETTING>`."""
LEASE_API_VERSION = "coordination.k8s.io/v1"
DEFAULT_LEASE_NAME = "bigmodel-operator"
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
"""Where a pod reads its own namespace (the lease's default namespace in a cluster)."""
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


@dataclass(frozen=True)
class ElectionSettings:
    """How the operator's replicas elect their leader; durations in seconds, defaults as
    controller-runtime's (15 / 10 / 2 s)."""

    enabled: bool = True
    """False for a single replica: it leads at once, with no lease."""
    lease_name: str = DEFAULT_LEASE_NAME
    lease_namespace: str = "default"
    lease_duration: float = 15.0
    """How long a candidate waits, from the last change it saw of the lease, before it takes
    the lease of a holder that stopped renewing."""
    renew_deadline: float = 10.0
    """How long the leader keeps trying to renew before it steps down: shorter than the lease
    duration, so that it stops before anyone can take over."""
    retry_period: float = 2.0
    """Pause between two tries of a candidate, and between two renewals of the leader."""
    release_on_cancel: bool = True
    """Give the lease up when the elector is cancelled (a clean shutdown), so that a standby
    takes over at once instead of after the lease duration."""

    def __post_init__(self) -> None:
        for name in ("lease_duration", "renew_deadline", "retry_period"):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"{_env(name)}={value}: must be a number of seconds above 0")
        if self.lease_duration < 1:
            raise ValueError(
                f"{_env('lease_duration')}={self.lease_duration}: must be at least 1 "
                "(a Lease holds whole seconds)"
            )
        if self.renew_deadline >= self.lease_duration:
            raise ValueError(
                f"{_env('renew_deadline')}={self.renew_deadline} must be below "
                f"{_env('lease_duration')}={self.lease_duration}: a leader that cannot renew "
                "must step down before another replica may take the lease"
            )
        if self.retry_period * JITTER >= self.renew_deadline:
            raise ValueError(
                f"{_env('retry_period')}={self.retry_period} must be below "
                f"{_env('renew_deadline')}={self.renew_deadline} / {JITTER}: the leader must "
                "get more than one try to renew before its deadline"
            )
        for name in ("lease_name", "lease_namespace"):
            if not getattr(self, name):
                raise ValueError(f"{_env(name)}: must not be empty")

    @property
    def lease_seconds(self) -> int:
        """The lease duration as the Lease holds it (whole seconds, rounded up)."""
        return math.ceil(self.lease_duration)

    @classmethod
    def from_env(cls, env: Mapping[str, str], namespaces: Sequence[str] = ()) -> ElectionSettings:
        """Defaults overridden by `BIGMODEL_LEADER_ELECTION` (true/false),
        `BIGMODEL_LEADER_ELECTION_LEASE_NAME`, `..._LEASE_NAMESPACE`, `..._LEASE_DURATION`,
        `..._RENEW_DEADLINE`, `..._RETRY_PERIOD` and `..._RELEASE_ON_CANCEL`. The lease's
        namespace defaults to the pod's own, outside a cluster to the first of the
        `namespaces` watched, else "default". A bad value raises ValueError naming it."""
        defaults = cls(lease_namespace=default_lease_namespace(namespaces))
        durations = {
            name: seconds_from_env(env, _env(name), getattr(defaults, name), allow_zero=False)
            for name in ("lease_duration", "renew_deadline", "retry_period")
        }
        return replace(
            defaults,
            enabled=_flag(env, ENV_PREFIX, defaults.enabled),
            lease_name=env.get(_env("lease_name")) or defaults.lease_name,
            lease_namespace=env.get(_env("lease_namespace")) or defaults.lease_namespace,
            release_on_cancel=_flag(env, _env("release_on_cancel"), defaults.release_on_cancel),
            **durations,
        )


JITTER = 1.2
"""A candidate waits between 1 and JITTER retry periods between two tries (client-go's
JitterFactor), so that candidates started together do not keep colliding."""


def _env(setting: str) -> str:
    return f"{ENV_PREFIX}_{setting.upper()}"


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE or raw in _FALSE:
        return raw in _TRUE
    raise ValueError(f"{name}={env[name]!r}: must be one of {', '.join(_TRUE + _FALSE)}")


def default_lease_namespace(
    namespaces: Sequence[str], own: Path = SERVICE_ACCOUNT_NAMESPACE
) -> str:
    """The pod's own namespace in a cluster (its service account's), else the first watched
    namespace, else "default"."""
    try:
        found = own.read_text().strip()
    except OSError:
        found = ""
    return found or next(iter(namespaces), "") or "default"


def new_identity(env: Mapping[str, str] = os.environ) -> str:
    """This process's name in the lease: POD_NAME (the chart sets it from the downward API)
    or the host name, plus a random suffix, so that a restarted container never mistakes
    its predecessor's lease for its own."""
    name = env.get("POD_NAME") or socket.gethostname()
    return f"{name}_{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class LeaseRecord:
    """What a Lease says about its holder (its spec), and the version it was read at."""

    holder: str = ""
    duration_seconds: int = 0
    acquire_time: str | None = None
    renew_time: str | None = None
    transitions: int = 0
    resource_version: str = ""

    @classmethod
    def from_lease(cls, lease: Mapping[str, Any]) -> LeaseRecord:
        """The record of a Lease object as the API server returns it."""
        spec = lease.get("spec") or {}
        return cls(
            holder=spec.get("holderIdentity") or "",
            duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
            acquire_time=spec.get("acquireTime"),
            renew_time=spec.get("renewTime"),
            transitions=int(spec.get("leaseTransitions") or 0),
            resource_version=str((lease.get("metadata") or {}).get("resourceVersion", "")),
        )

    def same_record(self, other: LeaseRecord | None) -> bool:
        """Whether `other` says the same (a renewal changes `renew_time`; the version is
        not compared, since unrelated writes such as labels also change it)."""
        return other is not None and replace(other, resource_version="") == replace(
            self, resource_version=""
        )


class Action(enum.Enum):
    """What one round of the elector does."""

    CREATE = "create"
    """No lease yet: create it, holding it."""
    ACQUIRE = "acquire"
    """The lease is free or expired: take it over."""
    RENEW = "renew"
    """We hold the lease: renew it."""
    WAIT = "wait"
    """Another replica holds a live lease: try again later."""
    STEP_DOWN = "step-down"
    """We were leading but another replica holds the lease, or we did not renew within the
    renew deadline: stop leading now."""


def decide(
    lease: LeaseRecord | None,
    observed_at: float,
    identity: str,
    now: float,
    renewed_at: float | None,
    settings: ElectionSettings,
) -> Action:
    """The round's action, given the lease as just read (None: there is none), when this
    replica first saw that record (monotonic seconds), its identity, the time now, and when
    its last successful renewal began (None: it is not leading)."""
    leading = renewed_at is not None
    if renewed_at is not None and now - renewed_at >= settings.renew_deadline:
        return Action.STEP_DOWN
    if lease is None:
        return Action.CREATE
    if lease.holder == identity:
        return Action.RENEW
    if leading:
        return Action.STEP_DOWN
    if not lease.holder:
        return Action.ACQUIRE
    duration = lease.duration_seconds or settings.lease_seconds
    return Action.ACQUIRE if now >= observed_at + duration else Action.WAIT


def micro_time(at: datetime | None = None) -> str:
    """A Kubernetes MicroTime (RFC 3339 with microseconds, UTC): the Lease's time fields."""
    return (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def lease_spec(
    action: Action, lease: LeaseRecord | None, identity: str, settings: ElectionSettings
) -> dict[str, Any]:
    """The Lease spec that `action` (CREATE, ACQUIRE or RENEW) writes: a renewal keeps the
    acquire time and the count of transitions, a takeover counts one more."""
    now = micro_time()
    previous = lease or LeaseRecord()
    renewing = action is Action.RENEW
    return {
        "holderIdentity": identity,
        "leaseDurationSeconds": settings.lease_seconds,
        "acquireTime": previous.acquire_time if renewing else now,
        "renewTime": now,
        "leaseTransitions": previous.transitions + (0 if renewing or lease is None else 1),
    }


def released_spec(lease: LeaseRecord) -> dict[str, Any]:
    """The Lease spec of a leader giving its lease up: no holder, and a one-second duration
    (client-go's release), so that the first standby to look takes over."""
    now = micro_time()
    return {
        "holderIdentity": None,
        "leaseDurationSeconds": 1,
        "acquireTime": now,
        "renewTime": now,
        "leaseTransitions": lease.transitions,
    }


def lease_object(
    settings: ElectionSettings, spec: Mapping[str, Any], resource_version: str = ""
) -> dict[str, Any]:
    """The Lease to create (no version) or to update (the version it was read at: the
    update fails with 409 if anyone wrote it since)."""
    metadata: dict[str, Any] = {"name": settings.lease_name, "namespace": settings.lease_namespace}
    if resource_version:
        metadata["resourceVersion"] = resource_version
    return {"apiVersion": LEASE_API_VERSION, "kind": "Lease", "metadata": metadata, "spec": spec}
