"""The `kubesandbox` command (also `python -m kubesandbox`, or a subcommand of a program that
embeds it): `up` runs a sandbox in the foreground until SIGINT/SIGTERM; `fault` injects
faults into a running one."""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import tempfile
from collections.abc import Sequence
from pathlib import Path

from kubesandbox.faults import command as fault_command
from kubesandbox.faults.plan import Kind, Rule, parse_rule
from kubesandbox.instance import Sandbox
from kubesandbox.kubelet.host import MIN_NODE_CPUS
from kubesandbox.kubelet.scheduler import quantity

DESCRIPTION = "A local Kubernetes API for development and tests (one machine, not a cluster)."
DEFAULT_NODES = 2
"""Two process nodes: the examples' 2-node jobs place one pod per node, as on a cluster."""


def _cpus(value: str) -> str:
    """`--cpus-per-node`: a positive CPU quantity."""
    try:
        ok = quantity(value) > 0
    except (ValueError, ArithmeticError):
        ok = False
    if not ok:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive CPU quantity (e.g. 4, 500m)")
    return value


def _fault(value: str) -> Rule:
    """`--fault`: a fault rule."""
    try:
        return parse_rule(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r}: {exc}") from None


FAULT_HELP = (
    "inject API faults by rule, KIND[:key=value,...] (repeatable): KIND is "
    f"{', '.join(Kind)}; keys rate (share of selected requests, default 1), code (error: "
    "429, 500, 503, 504), seconds (drop: a watch's life; stall: its length; slow: the delay; "
    "429/503: Retry-After), every (stall: period), and selectors verbs, resources, "
    "namespaces, user_agents (prefixes), several joined with + "
    "(e.g. error:code=503,rate=0.1,user_agents=kopf/+my-operator/); "
    "`kubesandbox fault set|show|clear` changes them while it runs; "
    "see docs/sandbox.md#fault-injection"
)


def build_parser(prog: str = "kubesandbox") -> argparse.ArgumentParser:
    """The command line: `up` and its options."""
    parser = argparse.ArgumentParser(prog=prog, description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    up = sub.add_parser(
        "up",
        help="run the sandbox in the foreground until interrupted",
        description="Serve a local Kubernetes API that kubectl, helm, kopf and the kubernetes "
        "client accept, and write a kubeconfig for it. Runs until SIGINT/SIGTERM.",
    )
    up.add_argument("--kubeconfig", help="kubeconfig to write (default: STATE_DIR/kubeconfig)")
    up.add_argument(
        "--state-dir",
        help="directory for logs and requests.log (default: a temporary one, removed on exit)",
    )
    up.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free)")
    up.add_argument(
        "--nodes",
        type=int,
        default=DEFAULT_NODES,
        help=f"nodes sandbox-node-<i> whose pods run as processes (default {DEFAULT_NODES})",
    )
    up.add_argument(
        "--cpus-per-node",
        type=_cpus,
        help=f"CPU each node advertises for scheduling, a quantity such as 8 or 2500m "
        f"(default: the host's CPU count, at least {MIN_NODE_CPUS}); processes share the "
        "host's CPUs whatever it says",
    )
    up.add_argument(
        "--gpus-per-node",
        type=int,
        default=0,
        help="fake nvidia.com/gpu per node when nvidia-smi finds no GPU (real ones are dealt "
        "round-robin over the nodes)",
    )
    up.add_argument(
        "--simulated-nodes",
        type=int,
        default=0,
        help="nodes sandbox-sim-<i> whose pods run without processes (like KWOK)",
    )
    up.add_argument(
        "--restart-backoff",
        type=float,
        default=10.0,
        help="seconds before a failed container's first restart, doubling to 5 min (and "
        "before a Job's failed pod is first replaced, doubling to 6 min, as in kube)",
    )
    up.add_argument(
        "--watch-history",
        type=int,
        default=20_000,
        help="changes kept for watches to resume from (older: 410 Gone)",
    )
    up.add_argument("--fault", type=_fault, action="append", default=[], help=FAULT_HELP)
    up.add_argument(
        "--fault-seed",
        type=int,
        default=0,
        help="seed of the faults' draws: the same seed faults the same requests (default 0)",
    )
    up.set_defaults(func=cmd_up)
    fault_command.add_parser(sub, FAULT_HELP)
    return parser


def main(argv: Sequence[str] | None = None, prog: str = "kubesandbox") -> int:
    """Run the command line; `prog` names it in usage lines (e.g. `<program> sandbox` where a
    program embeds it)."""
    args = build_parser(prog).parse_args(argv)
    result: int = args.func(args)
    return result


def cmd_up(args: argparse.Namespace) -> int:
    """Run until a signal, then remove the kubeconfig (and a temporary state dir)."""
    temporary = args.state_dir is None
    state_dir = Path(args.state_dir or tempfile.mkdtemp(prefix="kubesandbox-"))
    kubeconfig = Path(args.kubeconfig) if args.kubeconfig else state_dir / "kubeconfig"
    try:
        asyncio.run(_serve(args, state_dir, kubeconfig))
    finally:
        kubeconfig.unlink(missing_ok=True)
        if temporary:
            shutil.rmtree(state_dir, ignore_errors=True)
    return 0


async def _serve(args: argparse.Namespace, state_dir: Path, kubeconfig: Path) -> None:
    sandbox = Sandbox(
        state_dir,
        kubeconfig,
        nodes=args.nodes,
        gpus_per_node=args.gpus_per_node,
        simulated_nodes=args.simulated_nodes,
        port=args.port,
        history=args.watch_history,
        restart_backoff=args.restart_backoff,
        cpus_per_node=args.cpus_per_node,
        faults=args.fault,
        fault_seed=args.fault_seed,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    url = await sandbox.start()
    print(f"sandbox ready at {url}", flush=True)
    print(f"kubeconfig: {kubeconfig}", flush=True)
    print(f"state dir: {state_dir}", flush=True)
    print("point kubectl (and helm) at it:", flush=True)
    print(f"  export KUBECONFIG={kubeconfig}", flush=True)
    print("  kubectl get nodes", flush=True)
    try:
        await stop.wait()
    finally:
        await sandbox.stop()
        print("sandbox stopped", flush=True)
