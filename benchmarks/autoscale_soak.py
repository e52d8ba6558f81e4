"""Constant load on an autoscaled BigModelService for minutes: it must settle and never
change its replica count again (no flapping).

A sandbox, the operator (`bigmodel run`) and the example service
(`examples/cpu-service.yaml`: the torch runtime, autoscaled on requests in flight) serving a
checkpoint of the example trainer; `--clients` threads send completions without pause, each
on a new connection. After `--settle` seconds, the desired replica count is recorded every
second for `--minutes`; the benchmark prints the scale changes seen while settling and after
(the goal: none after), the replicas, and the in-flight, T and S ranges.

Run: .venv/bin/python benchmarks/autoscale_soak.py [--minutes 10] [--clients 8]
     [--target 4] [--max-replicas 3] [--interval 2] [--settle 60]
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from bigmodel.demo.load import Load
from kubesandbox.testing import (
    RunningSandbox,
    answers_ok,
    free_port,
    start_sandbox,
    stop_process,
    wait_for,
)

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
NAME = "soak"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="measured minutes")
    parser.add_argument("--clients", type=int, default=8, help="load threads")
    parser.add_argument("--target", type=float, default=4.0, help="in flight per replica")
    parser.add_argument("--max-replicas", type=int, default=3)
    parser.add_argument("--interval", type=float, default=2.0, help="telemetry seconds")
    parser.add_argument("--settle", type=float, default=60.0, help="seconds before measuring")
    return parser.parse_args()


@contextmanager
def operator(sandbox: RunningSandbox, log: Path, interval: float) -> Iterator[None]:
    """`bigmodel run` against the sandbox with telemetry every `interval` seconds."""
    health = free_port()
    command = [str(BIN / "bigmodel"), "run", "--health-port", str(health)]
    command += ["--metrics-port", str(free_port())]
    env = sandbox.env() | {"BIGMODEL_TELEMETRY_INTERVAL": str(interval)}
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        wait_for("the operator's /readyz", lambda: answers_ok(health, "/readyz"), 60)
        yield
    finally:
        stop_process(process)


def service(checkpoints: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The example service on `checkpoints`, its autoscaling set by the arguments."""
    docs = yaml.safe_load_all((REPO / "examples" / "cpu-service.yaml").read_text())
    [example] = [d for d in docs if d and d["kind"] == "BigModelService"]
    example["metadata"] = {"name": NAME}
    spec = example["spec"]
    spec["volumes"] = [{"name": "checkpoints", "hostPath": {"path": str(checkpoints)}}]
    spec["autoscaling"] |= {"maxReplicas": args.max_replicas, "target": args.target}
    return dict(example)


def changes(samples: list[int]) -> int:
    return sum(1 for a, b in itertools.pairwise(samples) if a != b)


def main() -> None:
    args = parse_args()
    state = Path(tempfile.mkdtemp(prefix="bigmodel-autoscale-soak-"))
    checkpoints = state / "checkpoints"
    subprocess.run(
        [
            *(sys.executable, "-m", "bigmodel.runtime.example_trainer", "--steps", "40"),
            *("--batch-size", "4", "--checkpoint-dir", str(checkpoints)),
        ],
        check=True,
        capture_output=True,
    )
    with (
        start_sandbox(state / "sandbox") as sandbox,
        operator(sandbox, state / "operator.log", args.interval),
    ):
        sandbox.kubectl("apply", "-f", str(REPO / "crds"))
        sandbox.kubectl("apply", "-f", "-", input=json.dumps(service(checkpoints, args)))

        def status() -> dict[str, Any]:
            return dict(sandbox.get("default", "bms", NAME).get("status") or {})

        wait_for(f"{NAME} Ready", lambda: status().get("phase") == "Ready", 300)
        front = sandbox.get("default", "service", NAME)["spec"]
        address = f"http://{front['clusterIP']}:{front['ports'][0]['port']}"
        settling: list[int] = []
        measured: list[dict[str, Any]] = []
        with Load(address, "tiny-chat", args.clients, tokens=16).running() as load:
            began = time.monotonic()
            while time.monotonic() - began < args.settle:
                settling.append(status().get("desiredReplicas", 0))
                time.sleep(1)
            began = time.monotonic()
            while time.monotonic() - began < args.minutes * 60:
                measured.append(status())
                time.sleep(1)
    desired = [s.get("desiredReplicas", 0) for s in measured]
    flights = [s["autoscaling"]["current"] for s in measured if s["autoscaling"].get("current")]
    totals = [s["telemetry"]["totalTaskSeconds"] for s in measured if s["telemetry"].get("n")]
    quality = [s["telemetry"]["serviceQuality"] for s in measured if s["telemetry"].get("n")]
    print(f"load: {args.clients} clients, target {args.target:g} in flight per replica,"
          f" max {args.max_replicas} replicas, telemetry every {args.interval:g}s")  # fmt: skip
    print(f"settling ({args.settle:g}s): {changes(settling)} scale changes, desired {settling}")
    print(f"measured ({args.minutes:g} min, {len(desired)} samples): {changes(desired)} scale"
          f" changes, desired replicas {sorted(set(desired))}")  # fmt: skip
    for name, values in (("in flight", flights), ("T", totals), ("S", quality)):
        if values:
            print(f"  {name:<9} min {min(values):.3f} median {statistics.median(values):.3f}"
                  f" max {max(values):.3f}")  # fmt: skip
    print(f"requests: {load.codes[200]} answered, {len(load.errors)} failed")


if __name__ == "__main__":
    main()
