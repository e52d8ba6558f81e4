"""Operator-wide state every controller shares, kept in kopf's memo: the API client, the
session that scrapes pods, the exported metrics, the telemetry interval, the operator's
health, the leader elector, each kind's controllers, whose workers run while this replica
leads and once the caches are synced, the resources kopf watches (whose caches `synced.sync`
fills at start) and the informers of those the operator watches itself (`informer`)."""

from __future__ import annotations

import asyncio
import contextvars
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
import kopf

from bigmodel.api import API_VERSION, JOB_KIND, SERVICE_KIND
from bigmodel.controller.election import new_identity
from bigmodel.controller.health import Health
from bigmodel.controller.informer import Informers
from bigmodel.controller.k8s import Kube, load_client_config
from bigmodel.controller.leader import LeaderElector
from bigmodel.controller.operator_settings import operator_settings
from bigmodel.controller.workers import Kind
from bigmodel.telemetry.collect import new_session
from bigmodel.telemetry.export import OperatorMetrics, default_metrics

if TYPE_CHECKING:
    from bigmodel.controller.caches import Listing


@dataclass
class OperatorContext:
    """What the handlers of every kind use; created once at startup."""

    kube: Kube
    scraper: aiohttp.ClientSession
    """Scrapes the pods of every resource (one connection pool for the operator)."""
    metrics: OperatorMetrics
    telemetry_interval: float
    """Seconds between two telemetry rounds of one resource."""
    health: Health = field(default_factory=Health)
    """What /healthz and /readyz judge (queues draining, caches, watches, loop, API)."""
    checks: asyncio.Task[None] | None = None
    """The event loop's tick and the API check feeding `health`."""
    kinds: list[Kind] = field(default_factory=list)
    """Each kind's controllers (queues and workers)."""
    listings: list[Listing] = field(default_factory=list)
    """The resources kopf watches, each LISTed once at start into its cache (`synced.sync`)."""
    informed: list[Listing] = field(default_factory=list)
    """The resources the operator watches itself (`informer`), started by `synced.sync`."""
    informers: Informers = field(default_factory=Informers)
    leading: bool = False
    """Whether this replica leads (its workers may write)."""
    election: asyncio.Task[None] | None = None
    """The leader elector, which calls `lead` and `step_down`."""
    posting: contextvars.Context | None = None
    """A copy of the context kopf runs its handlers in, for the workers' tasks: kopf posts
    events (`kopf.event`) only from a task that carries its event queue in its context,
    which kopf sets for its handlers and for nothing else (not the startup handlers, nor
    the tasks they create, such as the elector's)."""

    def add(self, kind: Kind) -> None:
        """Run `kind`'s controllers with the others: started with them, judged by liveness."""
        self.kinds.append(kind)
        for controller in kind.controllers:
            self.health.queues[controller.name] = controller.stalled

    def watch(self, *listings: Listing) -> None:
        """Fill these resources' caches at start, before they count as synced (kopf's
        event handlers keep them from then on)."""
        self.listings.extend(listings)

    def inform(self, *listings: Listing) -> None:
        """Watch these resources with informers of the operator's own (not kopf), which
        fill their caches; the caches count as synced once each has listed."""
        self.informed.extend(listings)

    def handling(self) -> None:
        """Called by every kopf watch-event handler: the first call keeps its context for
        the workers (see `posting`), which start with it when this replica may run them."""
        if self.posting is None:
            self.posting = contextvars.copy_context()
            self._run()

    def caches_synced(self) -> None:
        """Every cache holds every object as of its first LIST: a leader's workers may run."""
        self.health.caches_synced = True
        self._run()

    async def lead(self) -> None:
        """This replica became the leader: look at every object in the caches afresh."""
        self.leading = True
        for kind in self.kinds:
            kind.reset()
            queue = kind.controllers[0].queue
            for key in kind.cached():
                queue.add(key)
        self._run()

    async def step_down(self) -> None:
        """This replica no longer leads: stop the workers, cancelling the reconciles in
        flight, before another replica may take the lease."""
        self.leading = False
        for kind in self.kinds:
            for controller in kind.controllers:
                await controller.stop()

    def _run(self) -> None:
        if self.leading and self.health.caches_synced and self.posting is not None:
            for kind in self.kinds:
                for controller in kind.controllers:
                    controller.start(self.posting)


def context(memo: Any) -> OperatorContext:
    """The operator's context, from kopf's memo."""
    found: OperatorContext = memo.context
    return found


@kopf.on.startup()
async def start_operator_context(memo: Any, **_: Any) -> None:
    """Connect to the cluster and start the health checks (of the `Health` that
    `run_operator` serves, passed in the memo with the operator's settings). The API check
    lists one BigModelJob and one BigModelService where the operator watches: it needs the
    API server, the CRDs and the operator's permissions (and when there is none of either,
    the caches have nothing to sync)."""
    metrics = default_metrics()
    settings = operator_settings(memo)
    health: Health = memo.health
    kube = Kube(load_client_config(), metrics, written=health.watches.wrote)
    shared = OperatorContext(kube, new_session(), metrics, settings.telemetry_interval, health)
    namespace = next(iter(settings.namespaces), None)
    kinds = [
        {"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": "", "namespace": namespace}}
        for kind in (JOB_KIND, SERVICE_KIND)
    ]

    async def list_one_of_each() -> None:
        for kind in kinds:
            await kube.request("GET", await kube.path(kind, name=False), params={"limit": "1"})

    shared.checks = asyncio.create_task(health.run_checks(list_one_of_each))
    memo.context = shared
    elector = LeaderElector(kube, settings.election, new_identity())
    shared.election = asyncio.create_task(elector.run(shared.lead, shared.step_down))


@kopf.on.cleanup()
async def stop(memo: Any, **_: Any) -> None:
    """Stop leading (the workers stop, the lease is released for a standby to take at
    once) and close the client sessions."""
    shared = context(memo)
    if shared.election is not None:
        shared.election.cancel()
        await asyncio.gather(shared.election, return_exceptions=True)
    if shared.checks is not None:
        shared.checks.cancel()
    await shared.informers.stop()
    await shared.kube.close()
    await shared.scraper.close()
