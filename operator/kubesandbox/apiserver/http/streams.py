"""Responses that stay open: watches (JSON events or Table rows, with bookmarks and the
watch-list initial events) and followed container logs."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from kubesandbox.apiserver import errors
from kubesandbox.apiserver.cluster import Cluster
from kubesandbox.apiserver.cluster.reads import view
from kubesandbox.apiserver.errors import StatusError
from kubesandbox.apiserver.http import faulting
from kubesandbox.apiserver.http.codec import (
    EncodedObjects,
    as_table,
    dumps,
    flag,
    integer,
    wants_table,
)
from kubesandbox.apiserver.http.paths import Target
from kubesandbox.apiserver.registry import ResourceType
from kubesandbox.logs import container_log_path, tail
from kubesandbox.objects import Obj

_BOOKMARK_SECONDS = 5.0
_LOG_POLL_SECONDS = 0.2


def _limit(data: bytes, query: Any) -> bytes:
    """`limitBytes`: at most that many bytes of the log."""
    limit = integer(query.get("limitBytes"))
    return data[:limit] if limit is not None and limit >= 0 else data


class Streams:
    """Open watches and log streams of one API server; `close` ends the watches."""

    def __init__(
        self,
        cluster: Cluster,
        state_dir: Path,
        encoded: EncodedObjects,
        record: Callable[[web.Request, int], None],
    ) -> None:
        self.cluster = cluster
        self.state_dir = state_dir
        self._encoded = encoded
        self._record = record
        self._watchers: set[asyncio.Queue[Any]] = set()

    def close(self) -> None:
        """End every open watch."""
        for queue in list(self._watchers):
            queue.put_nowait(None)

    async def _start(self, request: web.Request, response: web.StreamResponse) -> None:
        """Send a streaming response's headers and log the request now (it may last long)."""
        await response.prepare(request)
        self._record(request, response.status)

    async def watch(
        self, request: web.Request, rt: ResourceType, target: Target
    ) -> web.StreamResponse:
        """A watch stream; with `sendInitialEvents` (watch-list, used by client-go reflectors)
        the current objects come first, closed by a bookmark marked `initial-events-end`."""
        query = request.query
        timeout = integer(query.get("timeoutSeconds")) or 1800
        bookmarks = flag(query.get("allowWatchBookmarks"))
        initial = flag(query.get("sendInitialEvents"))
        if initial and (query.get("resourceVersionMatch") != "NotOlderThan" or not bookmarks):
            raise errors.bad_request(
                "sendInitialEvents requires resourceVersionMatch=NotOlderThan and "
                "allowWatchBookmarks=true"
            )
        as_rows = wants_table(request)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        store = self.cluster.store
        fault = faulting.decision_of(request)
        try:
            if fault.gone:
                raise faulting.gone(request, store.rv)
            watcher = self.cluster.reads.watch(
                rt,
                target.namespace,
                query.get("labelSelector", ""),
                query.get("fieldSelector", ""),
                "" if initial else query.get("resourceVersion", ""),
            )
        except StatusError as exc:
            if exc.code != 410:
                raise
            await self._start(request, response)
            await response.write(dumps({"type": "ERROR", "object": exc.status()}) + b"\n")
            return response
        snapshot_rv = str(store.rv)
        initial_left = watcher.queue.qsize() if initial else -1
        await self._start(request, response)
        self._watchers.add(watcher.queue)
        deadline = time.monotonic() + timeout
        cut = None if fault.drop_after is None else time.monotonic() + fault.drop_after
        if cut is not None and cut < deadline:  # the plan drops the connection then
            deadline = cut
        else:
            cut = None

        def bookmark(rv: str, end_of_initial: bool = False) -> bytes:
            meta: Obj = {"resourceVersion": rv}
            if end_of_initial:
                meta["annotations"] = {"k8s.io/initial-events-end": "true"}
            mark = {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": meta}
            return dumps({"type": "BOOKMARK", "object": mark}) + b"\n"

        try:
            if initial_left == 0:
                await response.write(bookmark(snapshot_rv, True))
            while (left := deadline - time.monotonic()) > 0:
                try:
                    item = await asyncio.wait_for(watcher.queue.get(), min(left, _BOOKMARK_SECONDS))
                except TimeoutError:
                    if bookmarks:
                        await response.write(bookmark(str(store.rv)))
                    continue
                if item is None:
                    break
                kind, obj = item
                obj = view(rt, obj)
                if as_rows:
                    obj = as_table(
                        self.cluster.reads, rt, [obj], query.get("includeObject", "Object")
                    )
                encoded = dumps(obj) if as_rows else self._encoded.encode(obj)
                await response.write(b'{"type":"%s","object":%s}\n' % (kind.encode(), encoded))
                initial_left -= 1
                if initial_left == 0:
                    await response.write(bookmark(snapshot_rv, True))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            store.unwatch(watcher)
            self._watchers.discard(watcher.queue)
        if cut is not None and time.monotonic() >= cut and request.transport is not None:
            request.transport.abort()  # no end of the chunked stream: a dropped connection
            return response
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
        return response

    async def log(
        self, request: web.Request, rt: ResourceType, target: Target
    ) -> web.StreamResponse:
        """`pods/log`: the container's log file from the state dir, optionally followed."""
        ns, name, query = target.namespace or "", target.name, request.query
        pod = self.cluster.reads.get(rt, ns, name)
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
        previous, follow = flag(query.get("previous")), flag(query.get("follow"))
        path = container_log_path(self.state_dir, ns, name, container, previous)
        if not path.exists() and (previous or pod.get("status", {}).get("phase") == "Pending"):
            raise errors.bad_request(
                f'container "{container}" in pod "{name}" is waiting to start: ContainerCreating'
            )
        if not follow:
            data = path.read_bytes() if path.exists() else b""
            body = _limit(tail(data, integer(query.get("tailLines"))), query)
            return web.Response(body=body, content_type="text/plain")
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await self._start(request, response)
        while True:  # a running container may not have written anything yet
            if path.exists() or self._pod_finished(ns, name):
                break
            await asyncio.sleep(_LOG_POLL_SECONDS)
        if path.exists():
            # read and follow through one handle, so no line written meanwhile is lost
            with path.open("rb") as handle:
                await response.write(tail(handle.read(), integer(query.get("tailLines"))))
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
