"""How long the operator's replicas go without a leader: the time from the leader's end to
the standby's first moment as leader, with the chart's default durations (15 / 10 / 2 s),
for a leader that dies without a word (SIGKILL, OOM: its lease must expire) and for one that
shuts down cleanly (a rolling update: it releases its lease).

Two `LeaderElector`s in this process, each with its own API client, against a private
sandbox (started as `kubesandbox up`). The bound each figure is compared with is computed
from the same settings: `lease_duration + retry_period x 1.2` after a crash (the standby's
expiry clock starts at the last renewal it saw), `retry_period x 1.2` after a release.

    .venv/bin/python benchmarks/leader_failover.py              # 3 rounds of each
    .venv/bin/python benchmarks/leader_failover.py --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))

import kubernetes

from bigmodel.controller.election import JITTER, ElectionSettings
from bigmodel.controller.k8s import Kube
from bigmodel.controller.leader import LeaderElector
from kubesandbox.testing import RunningSandbox, start_sandbox


def client(sandbox: RunningSandbox) -> Kube:
    config = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=str(sandbox.kubeconfig), client_configuration=config
    )
    return Kube(config)


async def nothing() -> None:
    return None


async def handover(sandbox: RunningSandbox, settings: ElectionSettings) -> float:
    """Seconds from the end of the leader's task to the standby's first moment as leader."""
    kubes = [client(sandbox), client(sandbox)]
    leader = LeaderElector(kubes[0], settings, f"leader_{uuid.uuid4().hex[:6]}")
    standby = LeaderElector(kubes[1], settings, f"standby_{uuid.uuid4().hex[:6]}")
    leading = asyncio.create_task(leader.run(nothing, nothing))
    await leader.leading.wait()
    standing = asyncio.create_task(standby.run(nothing, nothing))
    await asyncio.sleep(3 * settings.retry_period)  # the standby has seen a few renewals
    leading.cancel()
    await asyncio.gather(leading, return_exceptions=True)
    ended = time.monotonic()
    await standby.leading.wait()
    took = time.monotonic() - ended
    standing.cancel()
    await asyncio.gather(standing, return_exceptions=True)
    for kube in kubes:
        await kube.close()
    return took


async def measure(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as state, start_sandbox(Path(state)) as sandbox:
        namespace = "default"
        base = ElectionSettings(lease_namespace=namespace)
        cases = {
            "crash (no release)": (
                replace(base, release_on_cancel=False),
                base.lease_duration + base.retry_period * JITTER,
            ),
            "clean shutdown (release)": (base, base.retry_period * JITTER),
        }
        print(f"{platform.node()}: {platform.processor() or platform.machine()}, Python "
              f"{platform.python_version()}, {datetime.now(UTC):%Y-%m-%d}")  # fmt: skip
        print(f"{'case':26} {'median s':>9} {'max s':>7} {'bound s':>8}  rounds")
        for name, (settings, bound) in cases.items():
            times = []
            for _ in range(rounds):
                lease = replace(settings, lease_name=f"bench-{uuid.uuid4().hex[:6]}")
                times.append(await handover(sandbox, lease))
            print(f"{name:26} {statistics.median(times):9.2f} {max(times):7.2f} {bound:8.2f}  "
                  + " ".join(f"{t:.2f}" for t in times))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="handovers of each kind")
    asyncio.run(measure(parser.parse_args().rounds))


if __name__ == "__main__":
    main()
