"""The startup handler that fills every cache, from one LIST of each resource kopf watches
and from the first LIST of each informer (the operator's own watches, which it starts), and
then marks the caches synced (readiness; a leader's workers start): see `caches`.

kopf runs startup handlers in the order they were registered, and starts its watches only
after all of them: `main` registers this one after every kind's handlers, whose `start`
names the kind's resources (`OperatorContext.watch`)."""

from __future__ import annotations

import logging
import time
from typing import Any

from bigmodel.controller.caches import fill
from bigmodel.controller.context import context
from bigmodel.controller.operator_settings import operator_settings

SYNC_RETRY_SECONDS = 2.0
"""kopf retries `sync` this long after a failed LIST (its default back-off is 60 s)."""

log = logging.getLogger(__name__)


async def sync(memo: Any, **_: Any) -> None:
    """Start the informers, fill the caches from one LIST of each resource kopf watches,
    wait for the informers' first LISTs, then mark the caches synced. kopf runs it again
    after a failure: the informers, started once, keep retrying on their own."""
    shared = context(memo)
    began = time.monotonic()
    namespaces = operator_settings(memo).namespaces
    shared.informers.start(shared.kube, shared.informed, namespaces)
    count = await fill(shared.kube, shared.listings, namespaces)
    count += await shared.informers.listed()
    log.info(
        "caches synced: %d objects of %d resources listed in %.1fs",
        count,
        len(shared.listings) + len(shared.informed),
        time.monotonic() - began,
    )
    shared.caches_synced()
