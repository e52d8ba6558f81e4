"""The files of examples/, as the tests read them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def documents(name: str) -> list[dict[str, Any]]:
    """Every object of `examples/<name>`."""
    return [d for d in yaml.safe_load_all((EXAMPLES / name).read_text()) if d]


def example(name: str, kind: str) -> dict[str, Any]:
    """The one object of `kind` in `examples/<name>`."""
    [found] = [d for d in documents(name) if d["kind"] == kind]
    return found
