"""The PATCH verb: JSON, merge and strategic-merge patches, and server-side apply."""

from __future__ import annotations

import copy
import json
from typing import Any

import yaml

from kubesandbox.apiserver import errors
from kubesandbox.apiserver.cluster import scale
from kubesandbox.apiserver.cluster.reads import view
from kubesandbox.apiserver.cluster.writes import WriteOptions, WriteResult, Writes, check_version
from kubesandbox.apiserver.errors import Cause, StatusError
from kubesandbox.apiserver.merging import apply
from kubesandbox.apiserver.merging.patches import APPLY, patched
from kubesandbox.apiserver.registry import ResourceType
from kubesandbox.objects import Obj


def _apply_body(data: bytes) -> Any:
    """An apply patch: YAML, or JSON (a subset of YAML, decoded ten times faster as JSON)."""
    if data.lstrip()[:1] == b"{":
        try:
            return json.loads(data)
        except ValueError:
            pass
    return yaml.load(data, Loader=yaml.CSafeLoader)


class Patches:
    """Patches decoded, applied to the live object, then written like an update."""

    def __init__(self, writes: Writes) -> None:
        self.writes = writes
        self.store = writes.store

    def patch(
        self,
        rt: ResourceType,
        ns: str,
        name: str,
        content_type: str,
        data: bytes,
        opts: WriteOptions,
        subresource: str,
        user_agent: str,
    ) -> WriteResult:
        """Apply a JSON, merge, strategic-merge or apply patch."""
        kind = content_type.split(";")[0].strip()
        try:
            patch = _apply_body(data) if kind == APPLY else json.loads(data)
        except (ValueError, yaml.YAMLError) as exc:
            raise errors.bad_request(f"error decoding patch: {exc}") from exc
        old = self.store.get(rt.key, ns if rt.namespaced else "", name)
        if kind == APPLY:
            return self._apply(rt, ns, name, old, patch, opts, subresource, user_agent)
        if old is None:
            raise errors.not_found(rt.group, rt.plural, name)
        if subresource == "scale":
            scaled = patched(rt, kind, scale.to_scale(rt, old), patch)
            return self.writes.update_scale(rt, ns, name, scaled, opts, user_agent)
        new = patched(rt, kind, copy.deepcopy(view(rt, old)), patch)
        check_version(rt, name, new.get("metadata", {}).get("resourceVersion"), old)
        return self.writes.write(rt, old, new, opts, subresource, user_agent, "Update")

    def _apply(
        self,
        rt: ResourceType,
        ns: str,
        name: str,
        old: Obj | None,
        applied: Obj,
        opts: WriteOptions,
        subresource: str,
        user_agent: str,
    ) -> WriteResult:
        """Server-side apply: creates the object when absent."""
        if not isinstance(applied, dict):
            raise errors.bad_request("apply patch must be an object")
        manager = opts.field_manager
        if not manager:
            raise errors.bad_request("PATCH requests with apply content type require fieldManager")
        live = None if old is None else view(rt, old)
        schema = self.writes.admission.raw_schema(rt)
        try:
            merged = apply.server_side_apply(
                rt.api_version, rt.kind, live, applied, manager, opts.force, schema
            )
        except apply.ApplyConflict as exc:
            causes = [Cause(c["type"], c["message"], c["field"]) for c in exc.causes()]
            raise StatusError(409, str(exc), "Conflict", causes=causes) from exc
        except apply.ApplyInvalid as exc:
            raise errors.bad_request(str(exc)) from exc
        if old is None:
            merged.setdefault("metadata", {})["name"] = name
            return self.writes.create(rt, ns, merged, opts, user_agent, tracked=True)
        return self.writes.write(rt, old, merged, opts, subresource, user_agent, "Apply")
