"""PATCH bodies (pure): their content types, and JSON, merge and strategic-merge patching."""

from __future__ import annotations

from typing import Any

import jsonpatch

from kubesandbox.apiserver import errors
from kubesandbox.apiserver.errors import StatusError
from kubesandbox.apiserver.merging import strategic
from kubesandbox.apiserver.registry import ResourceType
from kubesandbox.objects import Obj

MERGE, JSON_PATCH, STRATEGIC, APPLY = (
    "application/merge-patch+json",
    "application/json-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def patched(rt: ResourceType, kind: str, target: Obj, patch: Any) -> Obj:
    """`target` with a JSON, merge or strategic-merge patch applied; 415 for other types."""
    try:
        if kind == JSON_PATCH:
            result: Obj = jsonpatch.apply_patch(target, patch)
            return result
        if kind == MERGE:
            return dict(merge_patch(target, patch))
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
        raise StatusError(
            422, f"the server rejected our request due to an error in our request: {exc}"
        ) from exc
    if kind == STRATEGIC:
        try:
            return strategic.strategic_merge_patch(rt.api_version, rt.kind, target, patch)
        except strategic.StrategicMergeUnsupported as exc:
            raise StatusError(
                415,
                "the body of the request was in an unknown format - accepted media types "
                f"include: {JSON_PATCH}, {MERGE}, {APPLY}",
            ) from exc
        except strategic.StrategicMergeError as exc:
            raise errors.bad_request(str(exc)) from exc
    raise StatusError(415, f"the body of the request was in an unknown format: {kind}")
