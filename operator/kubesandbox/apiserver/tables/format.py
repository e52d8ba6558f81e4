"""How Table cells print values (pure): ages, times, labels and selectors, as kubectl does."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kubesandbox.objects import Obj, parse_time


def human_duration(seconds: float) -> str:
    """A duration as kubectl prints ages (`5s`, `3m12s`, `5h`, `2d3h`, `1y20d`)."""
    secs = int(seconds)
    if secs < -1:
        return "<invalid>"
    if secs < 0:
        return "0s"
    if secs < 120:
        return f"{secs}s"
    minutes, hours = secs // 60, secs // 3600
    days, years = hours // 24, hours // (24 * 365)
    if minutes < 10:
        return _two_units(minutes, "m", secs % 60, "s")
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return _two_units(hours, "h", minutes % 60, "m")
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return _two_units(days, "d", hours % 24, "h")
    if hours < 24 * 365 * 2:
        return f"{days}d"
    if hours < 24 * 365 * 8:
        return _two_units(years, "y", days % 365, "d")
    return f"{years}y"


def _two_units(major: int, major_unit: str, minor: int, minor_unit: str) -> str:
    return f"{major}{major_unit}{minor}{minor_unit}" if minor else f"{major}{major_unit}"


def age(timestamp: Any, now: datetime) -> str:
    """Time since an RFC 3339 timestamp, `<unknown>` when unset."""
    moment = parse_time(timestamp)
    return "<unknown>" if moment is None else human_duration((now - moment).total_seconds())


def field_at(obj: Any, *path: str) -> Any:
    """The value at a path of nested maps, None where one is missing."""
    for step in path:
        obj = obj.get(step) if isinstance(obj, dict) else None
    return obj


def created(obj: Obj, now: datetime) -> str:
    """The age of an object, from its creationTimestamp."""
    return age(field_at(obj, "metadata", "creationTimestamp"), now)


def name_of(obj: Obj) -> str:
    """The object's name ("" without one)."""
    return str(field_at(obj, "metadata", "name") or "")


def or_none(value: Any) -> str:
    """The value as text, `<none>` when empty."""
    return str(value) if value else "<none>"


def format_labels(labels: dict[str, str] | None) -> str:
    """`a=1,b=2` (sorted), `<none>` when empty."""
    return ",".join(f"{k}={v}" for k, v in sorted((labels or {}).items())) or "<none>"


def format_selector(selector: Obj | None) -> str:
    """A LabelSelector as kubectl prints it (`app=web,tier in (a,b)`), `<none>` when empty."""
    parts = [f"{k}={v}" for k, v in sorted(((selector or {}).get("matchLabels") or {}).items())]
    for expression in (selector or {}).get("matchExpressions") or []:
        key, operator, values = (
            expression["key"],
            expression["operator"],
            expression.get("values") or [],
        )
        if operator in ("In", "NotIn"):
            parts.append(f"{key} {operator.lower()} ({','.join(sorted(values))})")
        else:
            parts.append(key if operator == "Exists" else f"!{key}")
    return ",".join(parts) or "<none>"
