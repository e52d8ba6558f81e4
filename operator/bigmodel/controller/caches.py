"""The operator's caches and how they are known to be complete (readiness).

Each kind keeps plain dicts, by `namespace/name`, of the objects it watches (its own
resources and their children, bodies trimmed), filled by kopf event handlers
(`@kopf.on.event`) for the two kinds and by the operator's own informers for the children
(`informer`): one event, one dict update and a key queued, whatever the other objects are
doing. kopf's indexes (`@kopf.index`) are not used: kopf makes every object of an
indexed resource wait until all indexes are filled, and each object indexed wakes every
waiting one, a start quadratic in the objects (125 s for a fresh operator over 300 jobs).

Completeness: kopf runs the startup handlers before it starts any watch, and `synced.sync`,
the last of them, LISTs every resource kopf watches (what each kind registered with
`OperatorContext.watch`) and feeds each object to the cache through the same function as a
watch event, and waits for each informer's first LIST (`OperatorContext.inform`). So when
kopf's watches begin, the caches already hold every object as of that LIST; each watch
then starts from its own, later, listing and brings every change after it. The caches are
synced when it returns: readiness passes and a leader's workers start.

One gap is left for the kinds kopf watches, the same as after any re-list of kopf's
watches (a `410 Gone`): an object deleted between this LIST and kopf's own listing stays in
the cache, since kopf never saw it to report its deletion; a reconcile of a job or service
that is gone fails on its writes (404) and is retried with back-off. The informers feed
what vanished between two of their LISTs as deleted; the job controller still looks up
node pods that stay "leaving" (`job/departures.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import kopf

from bigmodel.controller.k8s import Kube, resource_path

Feed = Callable[[str | None, Mapping[str, Any]], None]
"""Takes one watch event (type, object) into a cache: type None for a listed object."""
PAGE = 500
"""Objects per page of the startup LIST (the API server's continue tokens page the rest)."""


@dataclass(frozen=True)
class Listing:
    """One watched resource: what to LIST at start and which cache its objects feed."""

    api_version: str
    plural: str
    labels: Mapping[str, Any]
    """kopf's label filter of the resource's event handlers (`kopf.PRESENT` or a value)."""
    feed: Feed


def label_selector(labels: Mapping[str, Any]) -> str:
    """The API's `labelSelector` for kopf's label filter: `key` for `kopf.PRESENT`,
    `key=value` for a value (other filters, such as callables, are not supported)."""
    terms = []
    for key, value in labels.items():
        if value is kopf.PRESENT:
            terms.append(key)
        elif isinstance(value, str):
            terms.append(f"{key}={value}")
        else:
            raise ValueError(f"label filter {key}: only kopf.PRESENT or a string, not {value!r}")
    return ",".join(terms)


@dataclass(frozen=True)
class Listed:
    """One LIST: its objects and the resourceVersion a watch resumes from."""

    items: list[dict[str, Any]]
    version: str | None


async def list_objects(kube: Kube, listing: Listing, namespace: str | None) -> Listed:
    """Every object of `listing`'s resource in `namespace` (None: all), page by page, each
    with its `apiVersion` and `kind` (a LIST names them once, for its items, as kopf's
    listing fills them in)."""
    path = resource_path(listing.api_version, listing.plural, namespace)
    params = {"limit": str(PAGE), "labelSelector": label_selector(listing.labels)}
    found: list[dict[str, Any]] = []
    while True:
        page = await kube.request("GET", path, params=params)
        kind = str(page.get("kind") or "").removesuffix("List")
        for item in page.get("items") or ():
            found.append({"apiVersion": listing.api_version, "kind": kind, **item})
        meta = page.get("metadata") or {}
        if not meta.get("continue"):
            return Listed(found, meta.get("resourceVersion"))
        params = {**params, "continue": meta["continue"]}


async def fill(kube: Kube, listings: Sequence[Listing], namespaces: Sequence[str]) -> int:
    """LIST every resource of `listings` in `namespaces` (none: cluster-wide) and feed each
    object to its cache; returns how many objects were fed."""
    count = 0
    for listing in listings:
        for namespace in namespaces or (None,):
            for obj in (await list_objects(kube, listing, namespace)).items:
                listing.feed(None, obj)
                count += 1
    return count
