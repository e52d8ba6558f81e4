"""What crosses the wire: request bodies and query flags in; JSON, Tables, Status and
`Warning` headers out, with stored objects' JSON encoded once."""

from __future__ import annotations

import json
from typing import Any

import yaml
from aiohttp import web

from kubesandbox.apiserver import errors
from kubesandbox.apiserver.cluster import WriteOptions, WriteResult
from kubesandbox.apiserver.cluster.reads import Reads
from kubesandbox.apiserver.errors import StatusError
from kubesandbox.apiserver.http import protobuf
from kubesandbox.apiserver.registry import ResourceType
from kubesandbox.apiserver.tables.convertor import to_table
from kubesandbox.objects import Obj

_TABLE = "as=Table"


def dumps(obj: Any) -> bytes:
    """Compact JSON bytes."""
    return json.dumps(obj, separators=(",", ":")).encode()


def json_response(
    obj: Any, status: int = 200, content_type: str = "application/json"
) -> web.Response:
    """A JSON response."""
    return web.Response(body=dumps(obj), status=status, headers={"Content-Type": content_type})


def error_response(exc: StatusError) -> web.Response:
    """The Status object of an error, with its HTTP code and headers."""
    response = json_response(exc.status(), exc.code)
    response.headers.update(exc.headers)
    return response


class EncodedObjects:
    """JSON of stored objects, encoded once per (uid, resourceVersion, apiVersion).

    Stored objects are never changed in place, so a version's bytes stay valid; lists and
    watch events then join cached bytes instead of re-encoding every object (the bulk of a
    large list's cost). The cache is dropped whole when it reaches `limit` entries.
    """

    def __init__(self, limit: int = 100_000) -> None:
        self._limit = limit
        self._cache: dict[tuple[str, str, str], bytes] = {}

    def encode(self, obj: Obj) -> bytes:
        """The object's JSON."""
        meta = obj.get("metadata") or {}
        key = (meta.get("uid", ""), meta.get("resourceVersion", ""), obj.get("apiVersion", ""))
        if not key[0] or not key[1]:
            return dumps(obj)
        found = self._cache.get(key)
        if found is None:
            if len(self._cache) >= self._limit:
                self._cache.clear()
            found = self._cache[key] = dumps(obj)
        return found

    def encode_list(self, listed: Obj) -> bytes:
        """A List object's JSON, items from the cache."""
        head = dumps({k: v for k, v in listed.items() if k != "items"})
        items = b",".join(self.encode(item) for item in listed["items"])
        return head[:-1] + b',"items":[' + items + b"]}"


def flag(value: str | None) -> bool:
    """A boolean query parameter."""
    return (value or "").lower() in ("1", "true")


def integer(value: str | None) -> int | None:
    """An integer query parameter (None when absent); 400 when not a number."""
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise errors.bad_request(f"invalid integer: {value}") from exc


def write_options(query: Any) -> WriteOptions:
    """WriteOptions from a request's query string."""
    return WriteOptions(
        dry_run=query.get("dryRun") == "All",
        field_manager=query.get("fieldManager", ""),
        field_validation=query.get("fieldValidation", "Warn") or "Warn",
        force=flag(query.get("force")),
    )


async def body(request: web.Request) -> Obj:
    """The request body as an object: JSON, YAML, or protobuf of the kinds typed clients send."""
    data = await request.read()
    if not data:
        return {}
    content_type = request.headers.get("Content-Type", "")
    if "protobuf" in content_type:
        try:
            return protobuf.decode(data)
        except protobuf.ProtobufUnsupported as exc:
            raise StatusError(
                415,
                f"the sandbox decodes protobuf only for the kinds typed kubectl and helm "
                f"commands send ({exc}); send JSON or YAML instead (kubectl apply -f)",
            ) from exc
    try:
        if "yaml" in content_type:
            loaded = yaml.load(data, Loader=yaml.CSafeLoader)
        else:
            loaded = json.loads(data)
    except (ValueError, yaml.YAMLError) as exc:
        raise errors.bad_request(f"error decoding body: {exc}") from exc
    if not isinstance(loaded, dict):
        raise errors.bad_request("the body of the request must be an object")
    return loaded


def wants_table(request: web.Request) -> bool:
    """Whether the client asks for a meta.k8s.io Table (kubectl get does)."""
    return _TABLE in request.headers.get("Accept", "")


def as_table(reads: Reads, rt: ResourceType, objects: list[Obj], include: str, rv: str = "") -> Obj:
    """Objects of one type as a Table, printed with their CRD's columns when they have one."""
    return to_table(
        rt.group,
        rt.plural,
        objects,
        reads.crd_of(rt),
        include,
        version=rt.version,
        resource_version=rv,
    )


def written(result: WriteResult) -> web.Response:
    """201 for a create, 200 otherwise, with `Warning` headers."""
    response = json_response(result.obj, 201 if result.created else 200)
    for warning in result.warnings:
        escaped = warning.replace("\\", "\\\\").replace('"', '\\"')
        response.headers.add("Warning", f'299 - "{escaped}"')
    return response
