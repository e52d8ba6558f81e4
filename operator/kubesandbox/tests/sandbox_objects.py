"""Objects the sandbox API tests create."""

from __future__ import annotations

from typing import Any


def configmap(name: str, labels: dict[str, str] | None = None, **meta: Any) -> dict[str, Any]:
    """A ConfigMap `name` with `labels` and other metadata (ownerReferences, finalizers...)."""
    return {"metadata": {"name": name, "labels": labels or {}, **meta}, "data": {"k": "v"}}
