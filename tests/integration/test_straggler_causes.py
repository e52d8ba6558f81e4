"""Why a straggler is slow, end to end: real torchrun pods of the example trainer in the
sandbox, each slowed on purpose in one way, and the operator naming the cause in
status.telemetry.stragglerDetails, the StragglerDetected condition and event, its own
/metrics, and a job's slow network as its CommunicationSlow condition.

Three job runs cover the five causes the issue lists: input wait and a slow network (one
job: the network slows from a later step on), a throttled GPU (fake NVML readings) beside
extra compute alone (one job of three nodes), and a node pinned to a CPU shared with
spinning processes."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubesandbox.testing import wait_for
from support.examples import example as load_example
from support.harness import Cluster, Operator

# minutes each under real torchrun: `make test-scenarios` runs them, apart from `make test`
pytestmark = [pytest.mark.integration, pytest.mark.scenarios]

FAKE_NVML = Path(__file__).parent.parent / "support" / "fakenvml"
MARKER_ENV = "KUBESANDBOX_PROCESS"


@pytest.fixture
def operator_env() -> dict[str, str]:
    """A telemetry round every second."""
    return {"BIGMODEL_TELEMETRY_INTERVAL": "1"}


def cause_job(nodes: int, *inject: str, **env: str) -> dict[str, Any]:
    """The CPU example, `nodes` x 1 process, one torch thread each, training until the test
    ends with `--inject` values; straggler window 5 s, threshold 0.6 (a 1.7x slower node)."""
    spec: dict[str, Any] = load_example("cpu-job.yaml", "BigModelJob")["spec"]
    spec["nodes"], spec["procsPerNode"] = nodes, 1
    spec["args"] = ["--steps", "100000", "--batch-size", "4", "--log-every", "50"]
    spec["args"] += [f"--inject={value}" for value in inject]
    spec["env"] = [{"name": k, "value": v} for k, v in {"OMP_NUM_THREADS": "1", **env}.items()]
    spec["telemetry"] = {"stragglerThreshold": 0.6, "windowSeconds": 5}
    return spec


def causes_of(cluster: Cluster, job: str, want: dict[str, str]) -> dict[str, dict[str, Any]]:
    """stragglerDetails by pod, once the stragglers are exactly `want` (pod -> cause)."""

    def found() -> dict[str, dict[str, Any]] | None:
        details = (cluster.status(job).get("telemetry") or {}).get("stragglerDetails") or []
        by_pod = {d["name"]: d for d in details}
        return by_pod if {p: d["cause"] for p, d in by_pod.items()} == want else None

    return dict(
        wait_for(
            f"{job}'s straggler causes to be {want}",
            found,
            timeout=120,
            context=lambda: cluster.kubectl("get", "bmj", job, "-o", "yaml"),
        )
    )


def condition(cluster: Cluster, job: str, type_: str, status: str) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        conditions = cluster.status(job).get("conditions") or ()
        hit = next((c for c in conditions if c["type"] == type_), None)
        return hit if hit and hit["status"] == status else None

    return dict(
        wait_for(
            f"{type_}={status}",
            found,
            timeout=120,
            context=lambda: cluster.kubectl("get", "bmj", job, "-o", "yaml"),
        )
    )


def test_input_wait_names_the_input_pipeline_and_a_slow_network_the_job(
    operator: Operator, cluster: Cluster, namespace: str
) -> None:
    # Rank 1 sleeps 0.8 s in its data loading each step; from step 15 every rank also
    # sleeps 0.5 s before its last gradient bucket's all-reduce.
    cluster.apply_job("feed", cause_job(2, "input-wait:1:0.8", "communication:0.5:15"))
    (detail,) = causes_of(cluster, "feed", {"feed-node-1": "InputPipeline"}).values()
    assert detail["excessSeconds"] > 0.4 and "input wait" in detail["detail"], detail
    assert detail["since"]
    flagged = condition(cluster, "feed", "StragglerDetected", "True")
    assert "node 1 (pod feed-node-1)" in flagged["message"]
    assert "InputPipeline" in flagged["message"]
    warned = [
        e["message"] for e in cluster.event_list("feed") if e["reason"] == "StragglerDetected"
    ]
    assert warned and "InputPipeline" in warned[0], warned
    job = {"namespace": namespace, "kind": "BigModelJob", "name": "feed"}
    assert operator.samples("bigmodel_node_straggler_cause", **job) == {("InputPipeline", "1"): 1.0}

    slow = condition(cluster, "feed", "CommunicationSlow", "True")
    assert slow["reason"] == "SlowCommunication"
    assert "exposed communication" in slow["message"]
    assert "SlowCommunication" in cluster.events("feed")


def test_a_throttled_gpu_and_extra_compute_alone_are_told_apart(
    operator: Operator, cluster: Cluster
) -> None:
    # Ranks 1 and 2 compute about 6x as much; node 1's (fake) GPU also reports a thermal
    # slowdown at a lower SM clock, node 2's is healthy.
    spec = cause_job(
        3,
        "compute:1:6",
        "compute:2:6",
        PYTHONPATH=str(FAKE_NVML),
        FAKE_NVML_THROTTLED_NODE="1",
    )
    cluster.apply_job("chips", spec)
    details = causes_of(
        cluster, "chips", {"chips-node-1": "GpuThrottled", "chips-node-2": "Unknown"}
    )
    assert "HwThermalSlowdown" in details["chips-node-1"]["detail"]
    assert "1200 MHz" in details["chips-node-1"]["detail"]
    assert "no host or GPU evidence" in details["chips-node-2"]["detail"]


def _pod_processes(uid: str) -> list[int]:
    """The sandbox processes of the pod `uid` (their marker names it)."""
    needle = f"/{uid}/".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                environ = (entry / "environ").read_bytes().split(b"\0")
                if any(v.startswith(MARKER_ENV.encode()) and needle in v for v in environ):
                    found.append(int(entry.name))
    return found


@contextlib.contextmanager
def pinned(uids: dict[str, set[int]]) -> Iterator[None]:
    """Keep every thread of each pod's processes on its CPUs, until the block ends (new
    threads and processes too: pinned again every half second)."""
    stop = threading.Event()

    def pin() -> None:
        while not stop.wait(0.5):
            for uid, cpus in uids.items():
                for pid in _pod_processes(uid):
                    with contextlib.suppress(OSError):
                        for task in Path(f"/proc/{pid}/task").iterdir():
                            os.sched_setaffinity(int(task.name), cpus)

    thread = threading.Thread(target=pin, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@contextlib.contextmanager
def spinning(cpu: int, count: int) -> Iterator[None]:
    """`count` processes spinning on `cpu`, until the block ends. Each starts a session of
    its own: Linux shares a CPU fairly between sessions (autogroups) before processes, so
    whatever else is pinned there gets about 1/(count + 1) of it."""
    spin = f"import os; os.sched_setaffinity(0, {{{cpu}}})\nwhile True: pass"
    procs = [
        subprocess.Popen([sys.executable, "-c", spin], start_new_session=True) for _ in range(count)
    ]
    try:
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


CPUS = len(os.sched_getaffinity(0))


@pytest.mark.skipif(CPUS < 2, reason="pinning one node apart needs 2 CPUs")
@pytest.mark.skipif(
    os.getloadavg()[0] > 6 * CPUS,
    reason="the machine is already loaded beyond what spinning processes on one CPU can "
    "make one node stand out from (both nodes starve alike)",
)
def test_a_node_starved_of_cpu_names_the_host(operator: Operator, cluster: Cluster) -> None:
    # Node 1's processes share one CPU with eight spinning processes; node 0's run where
    # they like (the other CPUs, as loaded as the machine is).
    cluster.apply_job("starved", cause_job(2))
    cluster.wait_running_pods(2)
    cpu = min(os.sched_getaffinity(0))
    with spinning(cpu, 8), pinned({cluster.uids()["starved-node-1"]: {cpu}}):
        (detail,) = causes_of(cluster, "starved", {"starved-node-1": "HostCpu"}).values()
    assert "waited for a CPU" in detail["detail"], detail
