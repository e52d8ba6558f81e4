"""Garbage-collection decisions (pure): what deleting an owner does to its dependents.

The sandbox collects synchronously: when an owner disappears its dependents are handled at
once, instead of by an asynchronous controller as in a real cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"


def propagation_policy(options: Mapping[str, Any]) -> str:
    """Background, Foreground or Orphan from DeleteOptions (incl. deprecated orphanDependents)."""
    policy = options.get("propagationPolicy")
    if policy:
        return str(policy)
    if options.get("orphanDependents") is True:
        return "Orphan"
    return "Background"


def dependent_action(
    dependent: Mapping[str, Any], gone_uid: str, exists: Callable[[str], bool]
) -> str:
    """`unlink` when another owner of the dependent still exists, else `delete`."""
    refs = dependent["metadata"].get("ownerReferences") or ()
    others = [r for r in refs if r.get("uid") != gone_uid]
    return "unlink" if any(exists(r.get("uid", "")) for r in others) else "delete"


def without_owner(obj: Mapping[str, Any], uid: str) -> dict[str, Any]:
    """A copy of the object with the owner reference to `uid` removed."""
    meta = dict(obj["metadata"])
    refs = [r for r in meta.get("ownerReferences") or () if r.get("uid") != uid]
    if refs:
        meta["ownerReferences"] = refs
    else:
        meta.pop("ownerReferences", None)
    return {**obj, "metadata": meta}


def without_finalizer(obj: Mapping[str, Any], finalizer: str) -> dict[str, Any]:
    """A copy of the object without one finalizer."""
    meta = dict(obj["metadata"])
    rest = [f for f in meta.get("finalizers") or () if f != finalizer]
    if rest:
        meta["finalizers"] = rest
    else:
        meta.pop("finalizers", None)
    return {**obj, "metadata": meta}


def should_release(obj: Mapping[str, Any], remaining_dependents: int) -> bool:
    """Whether a foreground-deleting owner may drop its `foregroundDeletion` finalizer."""
    meta = obj["metadata"]
    return (
        remaining_dependents == 0
        and bool(meta.get("deletionTimestamp"))
        and FOREGROUND in (meta.get("finalizers") or ())
    )
