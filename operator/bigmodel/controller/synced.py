"""The startup handler that fills every cache from one LIST of each watched resource and
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
    """Fill the caches from one LIST of each watched resource, then mark them synced."""
    shared = context(memo)
    began = time.monotonic()
    namespaces = operator_settings(memo).namespaces
    count = await fill(shared.kube, shared.listings, namespaces)
    log.info(
        "caches synced: %d objects of %d resources listed in %.1fs",
        count,
        len(shared.listings),
        time.monotonic() - began,
    )
    shared.caches_synced()
