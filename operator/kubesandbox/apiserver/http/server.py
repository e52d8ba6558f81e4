"""The HTTP face of the sandbox (aiohttp): routes requests to `Cluster` and logs each one."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from kubesandbox.apiserver import discovery, errors, openapi, tables
from kubesandbox.apiserver.cluster import Cluster, WriteOptions, WriteResult
from kubesandbox.apiserver.errors import ApiError
from kubesandbox.apiserver.http import protobuf, requestlog
from kubesandbox.apiserver.http.paths import Target, parse_resource_path
from kubesandbox.apiserver.registry import ResourceType
from kubesandbox.logs import container_log_path, tail
from kubesandbox.objects import Obj

VERSION = {
    "major": "1",
    "minor": "33",
    "gitVersion": "v1.33.0-sandbox",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.24",
    "compiler": "gc",
    "platform": "linux/amd64",
}
_TABLE = "as=Table"
_BOOKMARK_SECONDS = 5.0
_LOG_POLL_SECONDS = 0.2


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _json(obj: Any, status: int = 200, content_type: str = "application/json") -> web.Response:
    return web.Response(body=_dumps(obj), status=status, headers={"Content-Type": content_type})


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
            return _dumps(obj)
        found = self._cache.get(key)
        if found is None:
            if len(self._cache) >= self._limit:
                self._cache.clear()
            found = self._cache[key] = _dumps(obj)
        return found

    def encode_list(self, listed: Obj) -> bytes:
        """A List object's JSON, items from the cache."""
        head = _dumps({k: v for k, v in listed.items() if k != "items"})
        items = b",".join(self.encode(item) for item in listed["items"])
        return head[:-1] + b',"items":[' + items + b"]}"


def _error(exc: ApiError) -> web.Response:
    return _json(exc.status(), exc.code)


def _flag(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true")


def _int(value: str | None) -> int | None:
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
        force=_flag(query.get("force")),
    )


class ApiServer:
    """aiohttp application serving one Cluster."""

    def __init__(self, cluster: Cluster, state_dir: Path) -> None:
        self.cluster = cluster
        self.state_dir = state_dir
        self.address = ""
        self._log = requestlog.RequestLog(state_dir / requestlog.FILENAME)
        self._watchers: set[asyncio.Queue[Any]] = set()
        self._encoded = EncodedObjects()
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=[self._middleware])
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen; returns the base URL."""
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.address = f"{host}:{self._runner.addresses[0][1]}"
        return f"http://{self.address}"

    async def stop(self) -> None:
        """Close watches and stop listening."""
        for queue in list(self._watchers):
            queue.put_nowait(None)
        if self._runner is not None:
            await self._runner.cleanup()
        self._log.close()

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            response = await handler(request)
        except ApiError as exc:
            response = _error(exc)
        except web.HTTPException:
            raise
        except Exception as exc:  # an unexpected bug must still answer like an API server
            response = _error(ApiError(500, f"sandbox internal error: {exc!r}"))
        self._record(request, response.status)
        return response

    def _record(self, request: web.Request, code: int) -> None:
        """Log a request once (streams are logged when they start)."""
        if request.get("logged"):
            return
        request["logged"] = True
        self._log.write(
            requestlog.record(
                request.method,
                request.path,
                parse_resource_path(request.path),
                _flag(request.query.get("watch")),
                request.headers.get("User-Agent", ""),
                code,
            )
        )

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        static = self._static(request, path)
        if static is not None:
            return static
        target = parse_resource_path(path)
        if target is None:
            raise ApiError(404, "the server could not find the requested resource")
        rt = self.cluster.resource(target.group, target.version, target.plural)
        if target.namespace is None and rt.namespaced and target.name:
            raise ApiError(404, "the server could not find the requested resource")
        if target.subresource and target.subresource not in rt.subresources:
            raise ApiError(404, "the server could not find the requested resource")
        if target.subresource == "log":
            return await self._log_stream(request, rt, target)
        if target.subresource == "scale":
            return await self._scale(request, rt, target)
        return await self._resource(request, rt, target)

    def _static(self, request: web.Request, path: str) -> web.StreamResponse | None:
        """Version, health, discovery and OpenAPI documents."""
        accept = request.headers.get("Accept", "")
        registry = self.cluster.registry
        if path == "/version":
            return _json(VERSION)
        if path in ("/healthz", "/livez", "/readyz"):
            return web.Response(text="ok")
        if path in ("/api", "/apis") and discovery.wants_aggregated(accept):
            return _json(
                discovery.aggregated(registry, core=path == "/api"), 200, discovery.AGGREGATED
            )
        if path == "/api":
            return _json(discovery.api_versions(self.address))
        if path == "/apis":
            return _json(discovery.api_group_list(registry))
        parts = path.strip("/").split("/")
        if parts[0] == "apis" and len(parts) == 2:
            versions = registry.groups().get(parts[1])
            if not versions:
                raise ApiError(404, "the server could not find the requested resource")
            return _json(discovery.api_group(parts[1], versions))
        if (parts[0] == "api" and len(parts) == 2) or (parts[0] == "apis" and len(parts) == 3):
            group, version = ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])
            doc = discovery.resource_list(registry, group, version)
            if doc is None:
                raise ApiError(404, "the server could not find the requested resource")
            return _json(doc)
        if parts[0] == "openapi":
            return self._openapi(parts[1:])
        return None

    def _openapi(self, parts: list[str]) -> web.Response:
        crds = self.cluster.crds()
        if parts == ["v2"]:
            return _json(openapi.openapi_v2(crds))
        if parts == ["v3"]:
            return _json(openapi.openapi_v3_index(crds))
        if parts and parts[0] == "v3":
            found = openapi.openapi_v3_group_version("/".join(parts[1:]), crds)
            if found is not None:
                return _json(found)
        raise ApiError(404, "the server could not find the requested resource")

    # -- resources -----------------------------------------------------------------------

    async def _resource(
        self, request: web.Request, rt: ResourceType, target: Target
    ) -> web.StreamResponse:
        cluster, query, ns = self.cluster, request.query, target.namespace or ""
        name, sub = target.name, target.subresource
        agent = request.headers.get("User-Agent", "")
        method = request.method
        if method == "GET" and name:
            return self._render(request, rt, cluster.get(rt, ns, name), single=True)
        if method == "GET" and _flag(query.get("watch")):
            return await self._watch(request, rt, target)
        if method == "GET":
            listed = cluster.list(
                rt,
                target.namespace,
                query.get("labelSelector", ""),
                query.get("fieldSelector", ""),
                _int(query.get("limit")) or 0,
                query.get("continue", ""),
            )
            return self._render(request, rt, listed, single=False)
        if method == "POST" and not name:
            body = await _body(request)
            return _written(cluster.create(rt, ns, body, write_options(query), agent))
        if method == "PUT" and name:
            body = await _body(request)
            return _written(cluster.update(rt, ns, name, body, write_options(query), sub, agent))
        if method == "PATCH" and name:
            content_type = request.headers.get("Content-Type", "")
            data = await request.read()
            result = cluster.patch(
                rt, ns, name, content_type, data, write_options(query), sub, agent
            )
            return _written(result)
        if method == "DELETE":
            options = await _body(request) if request.can_read_body else {}
            if "propagationPolicy" in query:
                options["propagationPolicy"] = query["propagationPolicy"]
            if "gracePeriodSeconds" in query:
                options["gracePeriodSeconds"] = _int(query["gracePeriodSeconds"])
            if "orphanDependents" in query:
                options["orphanDependents"] = _flag(query["orphanDependents"])
            # dryRun comes in the query or in the DeleteOptions body (kubectl sends the latter)
            dry_run = query.get("dryRun") == "All" or "All" in (options.get("dryRun") or ())
            if name:
                return _json(cluster.delete(rt, ns, name, options, dry_run))
            return _json(
                cluster.delete_collection(
                    rt,
                    target.namespace,
                    query.get("labelSelector", ""),
                    query.get("fieldSelector", ""),
                    options,
                    dry_run,
                )
            )
        raise ApiError(405, "the server does not allow this method on the requested resource")

    def _render(
        self, request: web.Request, rt: ResourceType, body: Obj, single: bool
    ) -> web.Response:
        """JSON of an object or List, or a meta.k8s.io Table when the client asks for one."""
        if not _wants_table(request):
            if single:
                return _json(body)
            return web.Response(
                body=self._encoded.encode_list(body),
                headers={"Content-Type": "application/json"},
            )
        objects = [body] if single else body["items"]
        include = request.query.get("includeObject", "Metadata")
        rv = body["metadata"].get("resourceVersion", "")
        table = self._table(rt, objects, include, rv)
        if not single:
            table["metadata"] = body["metadata"]
        return _json(table)

    def _table(self, rt: ResourceType, objects: list[Obj], include: str, rv: str = "") -> Obj:
        return tables.to_table(
            rt.group,
            rt.plural,
            objects,
            self.cluster.crd_of(rt),
            include,
            version=rt.version,
            resource_version=rv,
        )

    async def _watch(
        self, request: web.Request, rt: ResourceType, target: Target
    ) -> web.StreamResponse:
        """A watch stream; with `sendInitialEvents` (watch-list, used by client-go reflectors)
        the current objects come first, closed by a bookmark marked `initial-events-end`."""
        query = request.query
        timeout = _int(query.get("timeoutSeconds")) or 1800
        bookmarks = _flag(query.get("allowWatchBookmarks"))
        initial = _flag(query.get("sendInitialEvents"))
        if initial and (query.get("resourceVersionMatch") != "NotOlderThan" or not bookmarks):
            raise errors.bad_request(
                "sendInitialEvents requires resourceVersionMatch=NotOlderThan and "
                "allowWatchBookmarks=true"
            )
        as_table = _wants_table(request)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        try:
            watcher = self.cluster.watch(
                rt,
                target.namespace,
                query.get("labelSelector", ""),
                query.get("fieldSelector", ""),
                "" if initial else query.get("resourceVersion", ""),
            )
        except ApiError as exc:
            if exc.code != 410:
                raise
            await self._start_stream(request, response)
            await response.write(_dumps({"type": "ERROR", "object": exc.status()}) + b"\n")
            return response
        snapshot_rv = str(self.cluster.store.rv)
        initial_left = watcher.queue.qsize() if initial else -1
        await self._start_stream(request, response)
        self._watchers.add(watcher.queue)
        deadline = time.monotonic() + timeout

        def bookmark(rv: str, end_of_initial: bool = False) -> bytes:
            meta: Obj = {"resourceVersion": rv}
            if end_of_initial:
                meta["annotations"] = {"k8s.io/initial-events-end": "true"}
            mark = {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": meta}
            return _dumps({"type": "BOOKMARK", "object": mark}) + b"\n"

        try:
            if initial_left == 0:
                await response.write(bookmark(snapshot_rv, True))
            while (left := deadline - time.monotonic()) > 0:
                try:
                    item = await asyncio.wait_for(watcher.queue.get(), min(left, _BOOKMARK_SECONDS))
                except TimeoutError:
                    if bookmarks:
                        await response.write(bookmark(str(self.cluster.store.rv)))
                    continue
                if item is None:
                    break
                kind, obj = item
                obj = self.cluster.view(rt, obj)
                if as_table:
                    obj = self._table(rt, [obj], query.get("includeObject", "Object"))
                encoded = _dumps(obj) if as_table else self._encoded.encode(obj)
                await response.write(b'{"type":"%s","object":%s}\n' % (kind.encode(), encoded))
                initial_left -= 1
                if initial_left == 0:
                    await response.write(bookmark(snapshot_rv, True))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.cluster.store.unwatch(watcher)
            self._watchers.discard(watcher.queue)
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
        return response

    async def _start_stream(self, request: web.Request, response: web.StreamResponse) -> None:
        """Send a streaming response's headers and log the request now (it may last long)."""
        await response.prepare(request)
        self._record(request, response.status)

    # -- subresources ------------------------------------------------------------------

    async def _scale(
        self, request: web.Request, rt: ResourceType, target: Target
    ) -> web.StreamResponse:
        cluster, ns, name = self.cluster, target.namespace or "", target.name
        agent = request.headers.get("User-Agent", "")
        if request.method == "GET":
            return _json(cluster.to_scale(rt, cluster.get(rt, ns, name)))
        if request.method == "PUT":
            body = await _body(request)
            return _written(
                cluster.update_scale(rt, ns, name, body, write_options(request.query), agent)
            )
        if request.method == "PATCH":
            content_type = request.headers.get("Content-Type", "")
            data = await request.read()
            return _written(
                cluster.patch(
                    rt, ns, name, content_type, data, write_options(request.query), "scale", agent
                )
            )
        raise ApiError(405, "the server does not allow this method on the requested resource")

    async def _log_stream(
        self, request: web.Request, rt: ResourceType, target: Target
    ) -> web.StreamResponse:
        """`pods/log`: the container's log file from the state dir, optionally followed."""
        ns, name, query = target.namespace or "", target.name, request.query
        pod = self.cluster.get(rt, ns, name)
        containers = [c["name"] for c in pod.get("spec", {}).get("containers", ())]
        container = query.get("container") or (containers[0] if len(containers) == 1 else "")
        if not container:
            raise errors.bad_request(
                f"a container name must be specified for pod {name}, choose one of: "
                f"[{' '.join(containers)}]"
            )
        init = [c["name"] for c in pod.get("spec", {}).get("initContainers", ())]
        if container not in containers + init:
            raise errors.bad_request(f"container {container} is not valid for pod {name}")
        previous, follow = _flag(query.get("previous")), _flag(query.get("follow"))
        path = container_log_path(self.state_dir, ns, name, container, previous)
        if not path.exists() and (previous or pod.get("status", {}).get("phase") == "Pending"):
            raise errors.bad_request(
                f'container "{container}" in pod "{name}" is waiting to start: ContainerCreating'
            )
        if not follow:
            data = path.read_bytes() if path.exists() else b""
            body = _limit(tail(data, _int(query.get("tailLines"))), query)
            return web.Response(body=body, content_type="text/plain")
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await self._start_stream(request, response)
        while True:  # a running container may not have written anything yet
            if path.exists() or self._pod_finished(ns, name):
                break
            await asyncio.sleep(_LOG_POLL_SECONDS)
        if path.exists():
            # read and follow through one handle, so no line written meanwhile is lost
            with path.open("rb") as handle:
                await response.write(tail(handle.read(), _int(query.get("tailLines"))))
                while True:
                    finished = self._pod_finished(ns, name)
                    chunk = handle.read()
                    if chunk:
                        await response.write(chunk)
                    elif finished:
                        break
                    else:
                        await asyncio.sleep(_LOG_POLL_SECONDS)
        await response.write_eof()
        return response

    def _pod_finished(self, ns: str, name: str) -> bool:
        """Whether a followed pod is gone or has terminated (its log will not grow)."""
        live = self.cluster.store.get("pods", ns, name)
        return live is None or live.get("status", {}).get("phase") in ("Succeeded", "Failed")


def _limit(data: bytes, query: Any) -> bytes:
    """`limitBytes`: at most that many bytes of the log."""
    limit = _int(query.get("limitBytes"))
    return data[:limit] if limit is not None and limit >= 0 else data


async def _body(request: web.Request) -> Obj:
    """The request body as an object: JSON, YAML, or protobuf of the kinds typed clients send."""
    data = await request.read()
    if not data:
        return {}
    content_type = request.headers.get("Content-Type", "")
    if "protobuf" in content_type:
        try:
            return protobuf.decode(data)
        except protobuf.ProtobufUnsupported as exc:
            raise ApiError(
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


def _wants_table(request: web.Request) -> bool:
    """Whether the client asks for a meta.k8s.io Table (kubectl get does)."""
    return _TABLE in request.headers.get("Accept", "")


def _written(result: WriteResult) -> web.Response:
    """201 for a create, 200 otherwise, with `Warning` headers."""
    response = _json(result.obj, 201 if result.created else 200)
    for warning in result.warnings:
        escaped = warning.replace("\\", "\\\\").replace('"', '\\"')
        response.headers.add("Warning", f'299 - "{escaped}"')
    return response
