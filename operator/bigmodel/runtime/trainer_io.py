"""What the example trainers share, free of any framework: option types that name the bad
value, and one structured log line per event."""

from __future__ import annotations

import argparse
import json
from typing import Any


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def log(msg: str, **fields: Any) -> None:
    """One structured log line."""
    print(json.dumps({"msg": msg, **fields}), flush=True)
