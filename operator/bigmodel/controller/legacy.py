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


class Release:
    """Removes what `legacy_patch` names from the objects of one kind, once per version of
    each: until the watch brings the patched object, the cache still shows the marks, and
    a second patch of that version would fail its tests."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self.patched: dict[str, str] = {}
        """uid -> the resourceVersion whose marks were removed."""

    async def __call__(self, body: Mapping[str, Any]) -> None:
        meta = body.get("metadata") or {}
        uid, version = str(meta.get("uid")), str(meta.get("resourceVersion"))
        patch = legacy_patch(body)
        if not patch or self.patched.get(uid) == version:
            return
        await self.kube.request("PATCH", await self.kube.path(body), patch, content_type=JSON_PATCH)
        self.patched[uid] = version

    def forget(self, uid: str) -> None:
        """The object is gone."""
        self.patched.pop(uid, None)
