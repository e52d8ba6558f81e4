"""Condition helpers shared by every kind: transition times kept while nothing changes,
terminal conditions final, and one event per condition that changed."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from bigmodel.api import Condition, ConditionStatus, ConditionType
from bigmodel.api.status import ResourceStatus

TERMINAL = (ConditionType.SUCCEEDED, ConditionType.FAILED)
S = TypeVar("S", bound=ResourceStatus)


@dataclass(frozen=True)
class Event:
    """A Kubernetes event to post on the resource."""

    type: str  # Normal | Warning
    reason: str
    message: str


def find(conditions: Sequence[Condition], type_: ConditionType) -> Condition | None:
    """The condition of type `type_`, or None."""
    return next((c for c in conditions if c.type == type_), None)


def set_condition(
    conditions: list[Condition],
    type_: ConditionType,
    status: bool,
    reason: str,
    message: str,
    generation: int | None,
    now: datetime,
) -> list[Condition]:
    """`conditions` with `type_` set; lastTransitionTime changes only when the status does,
    and a terminal condition (Succeeded or Failed) that is True never changes again."""
    old = find(conditions, type_)
    if old is not None and old.type in TERMINAL and old.status is ConditionStatus.TRUE:
        return conditions
    value = ConditionStatus.TRUE if status else ConditionStatus.FALSE
    since = old.last_transition_time if old is not None and old.status is value else now
    new = Condition(
        type=type_,
        status=value,
        reason=reason,
        message=message,
        last_transition_time=since,
        observed_generation=generation,
    )
    if old is None:
        return [*conditions, new]
    return [new if c.type == type_ else c for c in conditions]


def _same(before: Condition | None, after: Condition) -> bool:
    return before is not None and (before.status, before.reason) == (after.status, after.reason)


def transitions(
    old: Sequence[Condition],
    new: Sequence[Condition],
    warning: Callable[[Condition], bool],
    quiet_when_false: Collection[str] = (),
) -> list[Event]:
    """One event per condition that changed status or reason, a Warning when `warning(c)`;
    types of `quiet_when_false` turning False are not news (a more telling condition
    changes beside them)."""
    events = []
    for condition in new:
        before = next((c for c in old if c.type == condition.type), None)
        true = condition.status is ConditionStatus.TRUE
        if _same(before, condition) or (not true and condition.type in quiet_when_false):
            continue
        kind = "Warning" if warning(condition) else "Normal"
        events.append(Event(kind, condition.reason, condition.message))
    return events


def true_of(types: Collection[str]) -> Callable[[Condition], bool]:
    """A `warning` predicate: a condition of one of `types` that is True."""
    return lambda c: c.status is ConditionStatus.TRUE and c.type in types


def owned_status(status: ResourceStatus, types: Collection[str]) -> dict[str, Any]:
    """The status fields a controller owns, as JSON: all but `telemetry` (telemetry's own
    field manager writes it), with only its condition `types`."""
    owned = status.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"telemetry"})
    owned["conditions"] = [c for c in owned["conditions"] if c["type"] in types]
    return owned


def with_observed(written: S, observed: S, types: Collection[str]) -> S:
    """The status a controller last wrote (its condition `types` and fields), with what
    other field managers wrote since as the cache shows it: `telemetry` and the other
    conditions (StragglerDetected)."""
    conditions = [c for c in written.conditions if c.type in types] + [
        c for c in observed.conditions if c.type not in types
    ]
    return written.model_copy(update={"telemetry": observed.telemetry, "conditions": conditions})


class StatusStep(Generic[S]):
    """A resource's status under construction for one look at it: a copy of its status,
    stamped with the generation acted on, whose conditions are set at one `now`."""

    def __init__(self, status: S, generation: int | None, now: datetime) -> None:
        self.status: S = status.model_copy(deep=True)
        self.status.observed_generation = generation
        self.generation, self.now = generation, now

    def condition(self, type_: ConditionType, status: bool, reason: str, message: str = "") -> None:
        """Set condition `type_` (its transition time kept while its status holds)."""
        self.status.conditions = set_condition(
            self.status.conditions, type_, status, reason, message, self.generation, self.now
        )
