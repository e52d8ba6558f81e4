"""Sandbox API latency: list, watch and patch with 1,000 simulated pods and 200 custom
resources, against a baseline measured in the same run on an (almost) empty store.

Run: .venv/bin/python benchmarks/sandbox_api.py [--pods 1000] [--crs 200] [--rounds 50]
     [--no-encode-cache]   (encode every object on every request, as before the cache)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from kubesandbox.apiserver.http import codec
from kubesandbox.instance import Sandbox

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.bench.dev"},
    "spec": {
        "group": "bench.dev",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {"size": {"type": "integer", "minimum": 0}},
                            }
                        },
                    }
                },
            }
        ],
    },
}
PODS = "/api/v1/namespaces/default/pods"
WIDGETS = "/apis/bench.dev/v1/namespaces/default/widgets"
MERGE = {"Content-Type": "application/merge-patch+json"}


def _pod(i: int, nodes: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"pod-{i}", "labels": {"app": "bench", "shard": str(i % 10)}},
        "spec": {
            "nodeName": f"sandbox-sim-{i % nodes}",
            "containers": [{"name": "main", "image": "busybox"}],
        },
    }


async def _timed(fn: Any, rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        start = time.perf_counter()
        await fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


async def _measure(http: aiohttp.ClientSession, base: str, rounds: int) -> dict[str, list[float]]:
    """Latencies (ms) of list (all, selected), patch and patch-to-watch-event."""

    async def list_all() -> None:
        async with http.get(base + PODS) as r:
            await r.read()

    async def list_selected() -> None:
        async with http.get(base + PODS, params={"labelSelector": "shard in (1,2)"}) as r:
            await r.read()

    async def patch() -> None:
        body = json.dumps({"metadata": {"annotations": {"t": str(time.time())}}})
        async with http.patch(base + PODS + "/pod-0", data=body, headers=MERGE) as r:
            assert r.status == 200, await r.text()

    async with http.get(base + PODS + "/pod-0") as r:
        rv = (await r.json())["metadata"]["resourceVersion"]
    params = {"watch": "1", "resourceVersion": rv, "fieldSelector": "metadata.name=pod-0"}
    async with http.get(base + PODS, params=params, timeout=None) as stream:

        async def watch_event() -> None:
            await patch()
            await stream.content.readline()

        watch_ms = await _timed(watch_event, rounds)
    return {
        "list all pods": await _timed(list_all, rounds),
        "list pods by label selector": await _timed(list_selected, rounds),
        "patch (merge) one pod": await _timed(patch, rounds),
        "patch -> watch event": watch_ms,
    }


async def _populate(http: aiohttp.ClientSession, base: str, pods: int, crs: int) -> None:
    async with http.post(
        base + "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=CRD
    ) as r:
        assert r.status == 201, await r.text()
    for i in range(1, pods):
        async with http.post(base + PODS, json=_pod(i, 4)) as r:
            assert r.status == 201, await r.text()
    for i in range(crs):
        widget = {
            "apiVersion": "bench.dev/v1",
            "kind": "Widget",
            "metadata": {"name": f"w{i}"},
            "spec": {"size": i},
        }
        async with http.post(base + WIDGETS, json=widget) as r:
            assert r.status == 201, await r.text()


def _summary(samples: list[float]) -> str:
    q = statistics.quantiles(samples, n=20)
    return f"p50 {statistics.median(samples):7.2f}  p95 {q[18]:7.2f}"


async def main(pods: int, crs: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        sandbox = Sandbox(Path(tmp), Path(tmp) / "kubeconfig", simulated_nodes=4, history=100_000)
        base = await sandbox.start()
        try:
            # the kubeconfig's credentials: the admin token, over TLS to the sandbox's CA
            headers = {"Authorization": f"Bearer {sandbox.tokens.admin}"}
            tls = aiohttp.TCPConnector(ssl=sandbox.pki.client_context())
            async with aiohttp.ClientSession(headers=headers, connector=tls) as http:
                async with http.post(base + PODS, json=_pod(0, 4)) as r:
                    assert r.status == 201
                baseline = await _measure(http, base, rounds)
                start = time.perf_counter()
                await _populate(http, base, pods, crs)
                fill = time.perf_counter() - start
                await asyncio.sleep(1)  # let the simulated kubelet mark every pod Running
                loaded = await _measure(http, base, rounds)
        finally:
            await sandbox.stop()
    print(f"created {pods - 1} pods + {crs} custom resources in {fill:.1f}s")
    print(f"{'operation (ms)':32} {'baseline (1 pod)':>24} {f'{pods} pods + {crs} CRs':>24}")
    for name in baseline:
        print(f"{name:32} {_summary(baseline[name]):>24} {_summary(loaded[name]):>24}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--crs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--no-encode-cache", action="store_true")
    args = parser.parse_args()
    if args.no_encode_cache:
        codec.EncodedObjects.encode = lambda self, obj: codec.dumps(obj)  # type: ignore[method-assign]
    asyncio.run(main(args.pods, args.crs, args.rounds))
