"""What earlier versions of the operator left on the objects they handled, removed by the
first reconcile of this one: kopf's finalizer (with no daemon per object to stop, nothing
needs one: owner references garbage-collect the children), and kopf's bookkeeping
annotations. A finalizer left behind would make every deletion hang forever."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bigmodel.api import GROUP
from bigmodel.controller.k8s import Kube

FINALIZER = f"{GROUP}/finalizer"
"""The finalizer kopf added to every object while earlier versions ran a daemon for it."""
ANNOTATIONS = (
    f"{GROUP}/last-handled-configuration",
    f"{GROUP}/touch-dummy",
    f"{GROUP}/job_daemon",
    f"{GROUP}/telemetry",
    f"{GROUP}/service_daemon",
)
"""kopf's diff base, its touch annotation and its progress records of the old handlers."""
JSON_PATCH = "application/json-patch+json"


def _pointer(key: str) -> str:
    """`key` as a JSON pointer segment (RFC 6901)."""
    return key.replace("~", "~0").replace("/", "~1")


def legacy_patch(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A JSON patch removing the legacy finalizer and annotations from `body` (empty when it
    has none). Each removal is guarded by a test, so a list changed meanwhile is refused
    (409/422) rather than the wrong entry removed."""
    meta = body.get("metadata") or {}
    patch: list[dict[str, Any]] = []
    finalizers = list(meta.get("finalizers") or ())
    if FINALIZER in finalizers:
        at = f"/metadata/finalizers/{finalizers.index(FINALIZER)}"
        patch += [{"op": "test", "path": at, "value": FINALIZER}, {"op": "remove", "path": at}]
    annotations = meta.get("annotations") or {}
    for key in ANNOTATIONS:
        if key in annotations:
            patch.append({"op": "remove", "path": f"/metadata/annotations/{_pointer(key)}"})
    return patch


async def release(kube: Kube, body: Mapping[str, Any]) -> bool:
    """Remove what `legacy_patch` names from the object; whether there was anything."""
    patch = legacy_patch(body)
    if not patch:
        return False
    await kube.request("PATCH", await kube.path(body), patch, content_type=JSON_PATCH)
    return True
