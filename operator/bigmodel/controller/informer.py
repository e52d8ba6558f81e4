"""The operator's own watches of the children it creates (pods, Deployments, Services): each
resource is LISTed, then watched from the list's resourceVersion, both with a server-side
`labelSelector`, and every event goes straight into its cache (`caches.Feed`), as
client-go's informers do.

Why not kopf, which still watches the two custom resources: kopf handles every watch event
of an object through its per-object queue, body wrapping, handler matching, per-object
logger and patch machinery, about 0.8 ms each, and a pod brings several events; in a burst
of new jobs that was over half of the operator's CPU, on cores the API server needs
(`benchmarks/README.md`). Here an event costs one JSON decoding and one cache update.

What a watch needs to stay complete is kept:
- the server ends a watch after `WATCH_TIMEOUT` and the client gives up on a silent one
  (`k8s.WATCH_CLIENT_TIMEOUT`); either way the watch resumes from the last resourceVersion
  seen, which bookmarks keep recent;
- a `410 Gone` (the history no longer reaches back: as an HTTP status or as an ERROR
  event) means a LIST again (after `RETRY_SECONDS` when the last LIST was that recent);
  objects the cache held that the new LIST lacks are fed as deleted, with the metadata
  last seen (kopf's relists never told of those: the gap `job/departures.py` covers, which
  stays);
- a failed request is retried after `RETRY_SECONDS`, from the last version when there is
  one.
`Informers.listed` returns once every informer has done its first LIST: with the LIST of
the kinds kopf watches, that is when the caches are synced (`synced`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bigmodel.controller.caches import Listing, label_selector, list_objects
from bigmodel.controller.k8s import API_FAILURES, EXPIRED, ApiError, Kube, resource_path
from bigmodel.controller.objects import key_of

WATCH_TIMEOUT = 300
"""Seconds the server keeps one watch open (`timeoutSeconds`) before it is resumed."""
RETRY_SECONDS = 2.0
"""Pause before a failed LIST or watch is tried again."""

log = logging.getLogger(__name__)


class Expired(Exception):
    """The watch's resourceVersion is too old: LIST again."""


def last_seen(obj: Mapping[str, Any]) -> dict[str, Any]:
    """What a cache needs to forget `obj` when it vanished unseen: its kind and identifying
    metadata (labels and owners name its group), without the rest of the body."""
    meta = obj.get("metadata") or {}
    kept = ("name", "namespace", "uid", "labels", "ownerReferences")
    return {
        "apiVersion": obj.get("apiVersion"),
        "kind": obj.get("kind"),
        "metadata": {k: meta[k] for k in kept if k in meta},
    }


@dataclass
class Informer:
    """LIST then watch one resource of `listing` in `namespace` (None: all) into its feed."""

    kube: Kube
    listing: Listing
    namespace: str | None
    listed: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once the first LIST has been fed."""
    count: int = 0
    """Objects the first LIST fed."""
    version: str | None = None
    """The resourceVersion to resume the watch from (None: LIST first)."""
    known: dict[str, dict[str, Any]] = field(default_factory=dict)
    """By key: what was last seen of each object the feed holds (`last_seen`)."""
    listed_at: float = -math.inf
    """When the latest LIST was fed (monotonic)."""

    async def run(self) -> None:
        """LIST, watch, resume, LIST again after a 410; runs until cancelled."""
        while True:
            try:
                if self.version is None:
                    await self.relist()
                await self.follow()
            except Expired:
                self.version = None
                if time.monotonic() - self.listed_at < RETRY_SECONDS:
                    await asyncio.sleep(RETRY_SECONDS)  # expired again at once: no busy loop
            except API_FAILURES as exc:
                log.warning("%s: %s; retrying in %gs", self, exc, RETRY_SECONDS)
                await asyncio.sleep(RETRY_SECONDS)
            except Exception:  # a bad object or a bug: start over from a LIST
                log.exception("%s failed; listing again in %gs", self, RETRY_SECONDS)
                self.version = None
                await asyncio.sleep(RETRY_SECONDS)

    async def relist(self) -> None:
        """Feed every object of one LIST; feed those held but not listed as deleted."""
        found = await list_objects(self.kube, self.listing, self.namespace)
        before, self.known = self.known, {}
        for obj in found.items:
            self.listing.feed(None, obj)
            self.known[key_of(obj)] = last_seen(obj)
        for key, gone in before.items():
            if key not in self.known:
                self.listing.feed("DELETED", gone)
        self.version, self.listed_at = found.version, time.monotonic()
        if not self.listed.is_set():
            self.count = len(found.items)
            self.listed.set()

    async def follow(self) -> None:
        """Feed the events of one watch from `version` until the server ends it."""
        listing = self.listing
        path = resource_path(listing.api_version, listing.plural, self.namespace)
        params = {
            "labelSelector": label_selector(listing.labels),
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(WATCH_TIMEOUT),
            "resourceVersion": str(self.version),
        }
        try:
            async for event in self.kube.watch(path, params):
                self.take(event)
        except ApiError as exc:
            if exc.status == EXPIRED:
                raise Expired() from exc
            raise

    def take(self, event: Mapping[str, Any]) -> None:
        """One watch event into the feed (a bookmark only moves the version on)."""
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == EXPIRED:
                raise Expired()
            raise ApiError(int(obj.get("code") or 500), str(obj.get("message")))
        self.version = (obj.get("metadata") or {}).get("resourceVersion") or self.version
        if kind == "BOOKMARK":
            return
        key = key_of(obj)
        if kind == "DELETED":
            self.known.pop(key, None)
        else:
            self.known[key] = last_seen(obj)
        self.listing.feed(kind, obj)

    def __str__(self) -> str:
        return f"watch of {self.listing.plural} in {self.namespace or 'all namespaces'}"


@dataclass
class Informers:
    """The informers of every resource the operator watches itself, in each namespace."""

    running: list[tuple[Informer, asyncio.Task[None]]] = field(default_factory=list)

    def start(self, kube: Kube, listings: Sequence[Listing], namespaces: Sequence[str]) -> None:
        """Start an informer per listing and namespace (none: cluster-wide); once only."""
        if self.running:
            return
        for listing in listings:
            for namespace in namespaces or (None,):
                informer = Informer(kube, listing, namespace)
                task = asyncio.create_task(informer.run(), name=str(informer))
                self.running.append((informer, task))

    async def listed(self) -> int:
        """Wait until every informer has fed its first LIST; how many objects they fed."""
        for informer, _ in self.running:
            await informer.listed.wait()
        return sum(informer.count for informer, _ in self.running)

    async def stop(self) -> None:
        """Stop every informer."""
        tasks = [task for _, task in self.running]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.running = []
