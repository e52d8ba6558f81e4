"""The HTTP face of the sandbox (aiohttp): authenticates each request, applies the fault
plan, routes it to the `Cluster`'s verbs (or the admin routes under `/sandbox/`), and logs
it in the request log."""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

from aiohttp import web

from kubesandbox import auth
from kubesandbox.apiserver import discovery, openapi
from kubesandbox.apiserver.cluster import Cluster
from kubesandbox.apiserver.cluster.scale import to_scale
from kubesandbox.apiserver.errors import StatusError
from kubesandbox.apiserver.http import authn, faulting, requestlog
from kubesandbox.apiserver.http.codec import (
    EncodedObjects,
    as_table,
    body,
    error_response,
    flag,
    integer,
    json_response,
    wants_table,
    write_options,
    written,
)
from kubesandbox.apiserver.http.connect import portforward, remotecommand
from kubesandbox.apiserver.http.paths import Target, parse_resource_path
from kubesandbox.apiserver.http.streams import Streams
from kubesandbox.apiserver.registry import ResourceType
from kubesandbox.faults.plan import FaultPlan
from kubesandbox.objects import Obj
from kubesandbox.podstreams import PodStreams

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
_NOT_FOUND = "the server could not find the requested resource"
CONNECT = ("exec", "attach", "portforward")
_NOT_ALLOWED = "the server does not allow this method on the requested resource"
_USER = "sandbox-user"


class AdminRoutes(Protocol):
    """What serves the paths under `authn.ADMIN_PREFIX` (`faults.admin.Admin`)."""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Answer one admin request."""


class ApiServer:
    """aiohttp application serving one Cluster."""

    def __init__(
        self,
        cluster: Cluster,
        state_dir: Path,
        tokens: auth.Tokens,
        pods: PodStreams | None = None,
        faults: FaultPlan | None = None,
        admin: AdminRoutes | None = None,
    ) -> None:
        self.cluster = cluster
        self.state_dir = state_dir
        self.tokens = tokens
        self.pods = pods
        """The nodes' side of exec, attach and port-forward (None: those answer 404)."""
        self.faults = faults or FaultPlan()
        self.admin = admin
        self.address = ""
        self._log = requestlog.RequestLog(state_dir / requestlog.FILENAME)
        self._encoded = EncodedObjects()
        self._streams = Streams(cluster, state_dir, self._encoded, self._record)
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=[self._middleware])
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    async def start(
        self, host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None
    ) -> str:
        """Listen (over TLS with `tls`); returns the base URL."""
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, ssl_context=tls)
        await site.start()
        self.address = f"{host}:{self._runner.addresses[0][1]}"
        return f"{'https' if tls else 'http'}://{self.address}"

    async def stop(self) -> None:
        """Close watches and stop listening."""
        self._streams.close()
        if self._runner is not None:
            await self._runner.cleanup()
        self._log.close()

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            request[_USER] = authn.authenticate(self.tokens, request)
            target = parse_resource_path(request.path)
            if target is not None:
                await faulting.apply(self.faults, request, target)
            response = await handler(request)
        except StatusError as exc:
            response = error_response(exc)
        except web.HTTPException:
            raise
        except Exception as exc:  # an unexpected bug must still answer like an API server
            response = error_response(StatusError(500, f"sandbox internal error: {exc!r}"))
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
                flag(request.query.get("watch")),
                request.headers.get("User-Agent", ""),
                code,
                user=request.get(_USER),
                fault=faulting.labels(request),
            )
        )

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        if path.startswith(authn.ADMIN_PREFIX) and self.admin is not None:
            return await self.admin.handle(request)
        static = self._static(request, path)
        if static is not None:
            return static
        target = parse_resource_path(path)
        if target is None:
            raise StatusError(404, _NOT_FOUND)
        rt = self.cluster.reads.resource(target.group, target.version, target.plural)
        if target.namespace is None and rt.namespaced and target.name:
            raise StatusError(404, _NOT_FOUND)
        if target.subresource and target.subresource not in rt.subresources:
            raise StatusError(404, _NOT_FOUND)
        if target.subresource == "log":
            return await self._streams.log(request, rt, target)
        if target.subresource in CONNECT and self.pods is not None:
            return await self._connect(request, rt, target, self.pods)
        if target.subresource == "scale":
            return await self._scale(request, rt, target)
        return await self._resource(request, rt, target)

    async def _connect(
        self, request: web.Request, rt: ResourceType, target: Target, pods: PodStreams
    ) -> web.StreamResponse:
        """exec, attach and portforward of a pod (GET for WebSocket, POST for SPDY)."""
        if request.method not in ("GET", "POST"):
            raise StatusError(405, _NOT_ALLOWED)
        pod = self.cluster.reads.get(rt, target.namespace or "", target.name)
        if target.subresource == "portforward":
            return await portforward.serve(request, pod, pods, self._record)
        return await remotecommand.serve(request, target.subresource, pod, pods, self._record)

    def _static(self, request: web.Request, path: str) -> web.StreamResponse | None:
        """Version, health, discovery and OpenAPI documents."""
        accept = request.headers.get("Accept", "")
        registry = self.cluster.registry
        if path == "/version":
            return json_response(VERSION)
        if path in ("/healthz", "/livez", "/readyz"):
            return web.Response(text="ok")
        if path in ("/api", "/apis") and discovery.wants_aggregated(accept):
            document = discovery.aggregated(registry, core=path == "/api")
            return json_response(document, 200, discovery.AGGREGATED)
        if path == "/api":
            return json_response(discovery.api_versions(self.address))
        if path == "/apis":
            return json_response(discovery.api_group_list(registry))
        parts = path.strip("/").split("/")
        if parts[0] == "apis" and len(parts) == 2:
            versions = registry.groups().get(parts[1])
            if not versions:
                raise StatusError(404, _NOT_FOUND)
            return json_response(discovery.api_group(parts[1], versions))
        if (parts[0] == "api" and len(parts) == 2) or (parts[0] == "apis" and len(parts) == 3):
            group, version = ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])
            doc = discovery.resource_list(registry, group, version)
            if doc is None:
                raise StatusError(404, _NOT_FOUND)
            return json_response(doc)
        if parts[0] == "openapi":
            return self._openapi(parts[1:])
        return None

    def _openapi(self, parts: list[str]) -> web.Response:
        crds = self.cluster.reads.crds()
        if parts == ["v2"]:
            return json_response(openapi.openapi_v2(crds))
        if parts == ["v3"]:
            return json_response(openapi.openapi_v3_index(crds))
        if parts and parts[0] == "v3":
            found = openapi.openapi_v3_group_version("/".join(parts[1:]), crds)
            if found is not None:
                return json_response(found)
        raise StatusError(404, _NOT_FOUND)

    async def _resource(
        self, request: web.Request, rt: ResourceType, target: Target
    ) -> web.StreamResponse:
        cluster, query, ns = self.cluster, request.query, target.namespace or ""
        name, sub = target.name, target.subresource
        agent = request.headers.get("User-Agent", "")
        method = request.method
        if method == "GET" and name:
            return self._render(request, rt, cluster.reads.get(rt, ns, name), single=True)
        if method == "GET" and flag(query.get("watch")):
            return await self._streams.watch(request, rt, target)
        if method == "GET":
            listed = cluster.reads.list(
                rt,
                target.namespace,
                query.get("labelSelector", ""),
                query.get("fieldSelector", ""),
                integer(query.get("limit")) or 0,
                query.get("continue", ""),
            )
            return self._render(request, rt, listed, single=False)
        options = write_options(query)
        if method == "POST" and not name:
            return written(cluster.writes.create(rt, ns, await body(request), options, agent))
        if method == "PUT" and name:
            sent = await body(request)
            return written(cluster.writes.update(rt, ns, name, sent, options, sub, agent))
        if method == "PATCH" and name:
            content_type = request.headers.get("Content-Type", "")
            data = await request.read()
            return written(
                cluster.patches.patch(rt, ns, name, content_type, data, options, sub, agent)
            )
        if method == "DELETE":
            return json_response(await self._delete(request, rt, target))
        raise StatusError(405, _NOT_ALLOWED)

    async def _delete(self, request: web.Request, rt: ResourceType, target: Target) -> Obj:
        """DELETE of one object or a collection, DeleteOptions from the body and the query."""
        query = request.query
        options = await body(request) if request.can_read_body else {}
        if "propagationPolicy" in query:
            options["propagationPolicy"] = query["propagationPolicy"]
        if "gracePeriodSeconds" in query:
            options["gracePeriodSeconds"] = integer(query["gracePeriodSeconds"])
        if "orphanDependents" in query:
            options["orphanDependents"] = flag(query["orphanDependents"])
        # dryRun comes in the query or in the DeleteOptions body (kubectl sends the latter)
        dry_run = query.get("dryRun") == "All" or "All" in (options.get("dryRun") or ())
        deletes = self.cluster.deletes
        if target.name:
            return deletes.delete(rt, target.namespace or "", target.name, options, dry_run)
        return deletes.delete_collection(
            rt,
            target.namespace,
            query.get("labelSelector", ""),
            query.get("fieldSelector", ""),
            options,
            dry_run,
        )

    def _render(
        self, request: web.Request, rt: ResourceType, found: Obj, single: bool
    ) -> web.Response:
        """JSON of an object or List, or a meta.k8s.io Table when the client asks for one."""
        if not wants_table(request):
            if single:
                return json_response(found)
            return web.Response(
                body=self._encoded.encode_list(found),
                headers={"Content-Type": "application/json"},
            )
        objects = [found] if single else found["items"]
        include = request.query.get("includeObject", "Metadata")
        rv = found["metadata"].get("resourceVersion", "")
        table = as_table(self.cluster.reads, rt, objects, include, rv)
        if not single:
            table["metadata"] = found["metadata"]
        return json_response(table)

    async def _scale(
        self, request: web.Request, rt: ResourceType, target: Target
    ) -> web.StreamResponse:
        cluster, ns, name = self.cluster, target.namespace or "", target.name
        agent = request.headers.get("User-Agent", "")
        options = write_options(request.query)
        if request.method == "GET":
            return json_response(to_scale(rt, cluster.reads.get(rt, ns, name)))
        if request.method == "PUT":
            sent = await body(request)
            return written(cluster.writes.update_scale(rt, ns, name, sent, options, agent))
        if request.method == "PATCH":
            content_type = request.headers.get("Content-Type", "")
            data = await request.read()
            return written(
                cluster.patches.patch(rt, ns, name, content_type, data, options, "scale", agent)
            )
        raise StatusError(405, _NOT_ALLOWED)
