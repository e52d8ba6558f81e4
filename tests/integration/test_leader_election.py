"""Leader election against the sandbox's Leases: electors in this process, each with its own
API client, recording when they start and stop leading. The timelines must never overlap,
whatever happens to the leader (cancelled, cut off, shut down cleanly)."""

from __future__ import annotations

import asyncio
import itertools
import math
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes
import pytest
import yaml
from prometheus_client import CollectorRegistry

from bigmodel.controller.election import Action, ElectionSettings
from bigmodel.controller.k8s import Kube
from bigmodel.controller.leader import LeaderElector
from bigmodel.telemetry.export import OperatorMetrics
from kubesandbox.testing import RunningSandbox
from support.partition import relay

pytestmark = pytest.mark.integration

FAST = {"lease_duration": 6.0, "renew_deadline": 4.0, "retry_period": 0.5}
"""Short durations, so that a takeover after expiry happens within seconds, with a renew
deadline that a loaded machine's slow answers do not reach."""
WAIT = 60.0
"""Generous deadline of every wait for a condition (CI is a loaded 2-core machine)."""


@dataclass
class Timeline:
    """When one elector started and stopped leading (monotonic seconds)."""

    started: list[float] = field(default_factory=list)
    stopped: list[float] = field(default_factory=list)

    async def on_started(self) -> None:
        self.started.append(time.monotonic())

    async def on_stopped(self) -> None:
        self.stopped.append(time.monotonic())

    def terms(self) -> list[tuple[float, float]]:
        """Each term as leader, (start, stop); a term not over yet stops at infinity."""
        ends = [*self.stopped, math.inf][: len(self.started)]
        return list(zip(self.started, ends, strict=True))


def assert_never_two_leaders(*timelines: Timeline) -> None:
    terms = sorted(term for timeline in timelines for term in timeline.terms())
    for (_, stop), (start, _) in itertools.pairwise(terms):
        assert stop <= start, f"two leaders at once: terms {terms}"


async def until(what: str, check: Callable[[], bool]) -> None:
    """Wait for `check()` to hold, failing after WAIT seconds."""
    deadline = time.monotonic() + WAIT
    while not check():
        assert time.monotonic() < deadline, f"timed out after {WAIT:g} s waiting for {what}"
        await asyncio.sleep(0.05)


@dataclass
class Campaign:
    """Electors of one lease in a fresh namespace, each with its own client."""

    sandbox: RunningSandbox
    settings: ElectionSettings
    tmp_path: Path
    kubes: list[Kube] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def elector(self, name: str, port: int | None = None, **settings: Any) -> LeaderElector:
        """An elector named `name_<n>`; through 127.0.0.1:`port` (a relay) when given."""
        kubeconfig = self.sandbox.kubeconfig
        if port is not None:  # a copy naming the relay (the client reloads the file)
            loaded = yaml.safe_load(kubeconfig.read_text())
            loaded["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{port}"
            kubeconfig = self.tmp_path / f"kubeconfig-{port}"
            kubeconfig.write_text(yaml.safe_dump(loaded))
        config = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig), client_configuration=config
        )
        kube = Kube(config, OperatorMetrics(CollectorRegistry()))
        self.kubes.append(kube)
        identity = f"{name}_{len(self.kubes)}"
        return LeaderElector(kube, replace(self.settings, **settings), identity)

    def run(self, elector: LeaderElector) -> Timeline:
        """Start `elector.run`, recording its terms."""
        timeline = Timeline()
        self.tasks.append(
            asyncio.create_task(elector.run(timeline.on_started, timeline.on_stopped))
        )
        return timeline

    def lease(self) -> dict[str, Any]:
        return dict(
            self.sandbox.get(self.settings.lease_namespace, "lease", self.settings.lease_name)
        )


@pytest.fixture
def lease_namespace(sandbox: RunningSandbox) -> Iterator[str]:
    with sandbox.namespace("lease") as name:
        yield name


@pytest.fixture
async def campaign(
    sandbox: RunningSandbox, lease_namespace: str, tmp_path: Path
) -> AsyncIterator[Campaign]:
    name = f"operator-{uuid.uuid4().hex[:6]}"
    settings = ElectionSettings(lease_name=name, lease_namespace=lease_namespace, **FAST)
    running = Campaign(sandbox, settings, tmp_path)
    yield running
    for task in running.tasks:
        task.cancel()
    await asyncio.gather(*running.tasks, return_exceptions=True)
    for kube in running.kubes:
        await kube.close()


async def cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_of_two_electors_one_leads_and_the_other_stands_by(campaign: Campaign) -> None:
    first, second = campaign.elector("a"), campaign.elector("b")
    timelines = campaign.run(first), campaign.run(second)
    await until("a leader", lambda: first.is_leader or second.is_leader)
    for _ in range(40):  # about ten renewals: never both
        assert not (first.is_leader and second.is_leader)
        await asyncio.sleep(0.1)
    leader = first if first.is_leader else second
    assert campaign.lease()["spec"]["holderIdentity"] == leader.identity
    for elector in (first, second):
        assert elector.kube.metrics is not None
        gauge = elector.kube.metrics.registry.get_sample_value("bigmodel_operator_leader")
        assert gauge == (1 if elector is leader else 0)
    assert_never_two_leaders(*timelines)


async def test_when_the_leader_dies_the_standby_takes_over_once_the_lease_expired(
    campaign: Campaign,
) -> None:
    leader = campaign.elector("a", release_on_cancel=False)  # dies as if SIGKILLed
    standby = campaign.elector("b")
    died = campaign.run(leader)
    await until("a to lead", lambda: leader.is_leader)
    took_over = campaign.run(standby)
    await asyncio.sleep(1.0)  # the standby watches a few renewals
    await cancel(campaign.tasks[0])
    last_renewal = leader.renewed_at
    assert last_renewal is not None
    await until("b to take over", lambda: standby.is_leader)
    assert took_over.started[0] - last_renewal >= campaign.settings.lease_duration
    assert campaign.lease()["spec"]["holderIdentity"] == standby.identity
    assert_never_two_leaders(died, took_over)


async def test_a_leader_cut_off_from_the_api_steps_down_before_the_standby_takes_over(
    campaign: Campaign,
) -> None:
    address = urlsplit(campaign.sandbox.url)
    async with relay(address.hostname or "127.0.0.1", address.port or 443) as partition:
        leader = campaign.elector("a", port=partition.port)
        standby = campaign.elector("b")
        cut_off = campaign.run(leader)
        await until("a to lead", lambda: leader.is_leader)
        took_over = campaign.run(standby)
        await asyncio.sleep(1.0)
        partition.cut()
        await until("b to take over", lambda: standby.is_leader)
        assert cut_off.stopped, "the cut-off leader never stepped down"
        assert cut_off.stopped[0] < took_over.started[0]
        assert not leader.is_leader and not leader.leading.is_set()
        partition.heal()  # reconnected, the former leader finds the lease taken
        assert not await leader.try_acquire_or_renew()
        assert campaign.lease()["spec"]["holderIdentity"] == standby.identity
        assert_never_two_leaders(cut_off, took_over)


async def test_a_clean_shutdown_releases_the_lease_so_the_standby_takes_over_at_once(
    campaign: Campaign,
) -> None:
    # A lease of 300 s: only the release lets the standby lead within the wait's 60 s.
    slow = {"lease_duration": 300.0, "renew_deadline": 10.0}
    leader, standby = campaign.elector("a", **slow), campaign.elector("b", **slow)
    stopped = campaign.run(leader)
    await until("a to lead", lambda: leader.is_leader)
    took_over = campaign.run(standby)
    await cancel(campaign.tasks[0])
    assert stopped.stopped, "a clean shutdown calls on_stopped"
    await until("b to take over", lambda: standby.is_leader)
    assert_never_two_leaders(stopped, took_over)


@pytest.mark.parametrize("existing", [False, True], ids=["create", "takeover"])
async def test_two_electors_racing_for_a_free_lease_one_wins_and_one_gets_a_conflict(
    campaign: Campaign, existing: bool
) -> None:
    if existing:  # a lease given up by a leader that shut down
        former = campaign.elector("former")
        assert await former.try_acquire_or_renew()
        await former.release()
    first, second = campaign.elector("a"), campaign.elector("b")
    # Both read the same version of the lease before either writes.
    rounds = await first.observe(), await second.observe()
    expected = Action.ACQUIRE if existing else Action.CREATE
    assert [r.action for r in rounds] == [expected, expected]
    assert await first.act(rounds[0]) is expected
    assert await second.act(rounds[1]) is None  # 409: the lease changed since it was read
    assert first.is_leader and not second.is_leader
    assert campaign.lease()["spec"]["holderIdentity"] == first.identity


async def test_with_election_disabled_the_only_replica_leads_at_once_without_a_lease(
    campaign: Campaign,
) -> None:
    alone = campaign.elector("alone", enabled=False)
    timeline = campaign.run(alone)
    await until("it to lead", lambda: alone.is_leader)
    assert timeline.started and not timeline.stopped
    done = campaign.sandbox.kubectl(
        "get", "lease", "-n", campaign.settings.lease_namespace, campaign.settings.lease_name,
        check=False,
    )  # fmt: skip
    assert "NotFound" in done.stderr
    await cancel(campaign.tasks[0])
    assert timeline.stopped and not alone.is_leader
