"""kstatus's verdict on a custom resource, as Flux's health checks (`wait`, `healthChecks`)
and `kpt live status` compute it with the generic rules of sigs.k8s.io/cli-utils
pkg/kstatus/status (a custom resource has no kind-specific rules), in Python.

Terminating while being deleted; InProgress while `status.observedGeneration` (when present)
differs from `metadata.generation`; then, in the order the conditions are listed, InProgress
at the first `Reconciling` that is True or Failed at the first `Stalled` that is True; Current
otherwise, with or without a Ready condition.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

IN_PROGRESS, FAILED, CURRENT, TERMINATING = "InProgress", "Failed", "Current", "Terminating"


def verdict(body: Mapping[str, Any]) -> str:
    """What kstatus reports for a custom resource body."""
    metadata, status = body.get("metadata") or {}, body.get("status") or {}
    if metadata.get("deletionTimestamp"):
        return TERMINATING
    observed, generation = status.get("observedGeneration"), metadata.get("generation")
    if observed is not None and generation is not None and observed != generation:
        return IN_PROGRESS
    for condition in status.get("conditions") or ():
        if condition.get("status") != "True":
            continue
        if condition.get("type") == "Reconciling":
            return IN_PROGRESS
        if condition.get("type") == "Stalled":
            return FAILED
    return CURRENT
