"""Settings the operator and its runtimes read from the environment (`BIGMODEL_*`)."""

from __future__ import annotations

import math
from collections.abc import Mapping


def seconds_from_env(
    env: Mapping[str, str], name: str, default: float, *, allow_zero: bool = True
) -> float:
    """`env[name]` as a number of seconds (finite, not negative, and above 0 unless
    `allow_zero`), else `default`; a bad value raises ValueError naming the variable."""
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r}: not a number") from None
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name}={raw!r}: must be {'at least' if allow_zero else 'above'} 0")
    return value


def count_from_env(env: Mapping[str, str], name: str, default: int, *, least: int = 1) -> int:
    """`env[name]` as a whole number of at least `least`, else `default`; a bad value raises
    ValueError naming the variable and what it allows."""
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r}: not a whole number") from None
    if value < least:
        raise ValueError(f"{name}={raw!r}: must be at least {least}")
    return value
