"""Condition helpers: transition times kept while nothing changes, terminal states final."""

from __future__ import annotations

from datetime import datetime

from bigmodel.api import Condition, ConditionStatus

TERMINAL = ("Succeeded", "Failed")


def find(conditions: list[Condition], type_: str) -> Condition | None:
    """The condition of type `type_`, or None."""
    return next((c for c in conditions if c.type == type_), None)


def set_condition(
    conditions: list[Condition],
    type_: str,
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
