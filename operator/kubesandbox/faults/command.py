"""`kubesandbox fault ...`: the admin routes from the command line, for a running sandbox
(its kubeconfig holds the URL, CA and admin token): the API's fault plan set, shown or
cleared, a pod's processes killed, a pod evicted, a node lost or back."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from kubesandbox.faults.client import AdminError, FaultClient
from kubesandbox.faults.plan import Rule, parse_rule


def _rule(value: str) -> Rule:
    try:
        return parse_rule(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r}: {exc}") from None


def add_parser(sub: Any, rule_help: str) -> None:
    """The `fault` command and its actions."""
    fault = sub.add_parser(
        "fault",
        help="inject faults into a running sandbox (API, pods, nodes)",
    )
    fault.add_argument(
        "--kubeconfig", help="the sandbox's kubeconfig (default: $KUBECONFIG)", default=None
    )
    actions = fault.add_subparsers(dest="action", required=True, metavar="ACTION")
    setting = actions.add_parser("set", help="replace the API's fault plan", description=rule_help)
    setting.add_argument("rules", nargs="+", type=_rule, metavar="RULE")
    setting.add_argument("--seed", type=int, default=0)
    actions.add_parser("show", help="the plan and the faults injected since it was set")
    actions.add_parser("clear", help="no more API faults (prints what was injected)")
    for name, what in (("kill", "SIGKILL a pod's processes"), ("evict", "evict a pod")):
        action = actions.add_parser(name, help=what)
        action.add_argument("pod", metavar="NAMESPACE/POD")
        if name == "kill":
            action.add_argument("--children", action="store_true", help="only its children")
    node = actions.add_parser("node", help="take a node away (NotReady) or bring it back")
    node.add_argument("name")
    node.add_argument("--ready", action="store_true", help="bring it back (default: lose it)")
    node.add_argument(
        "--seconds", type=float, default=0, help="lost for this long (0: until --ready)"
    )
    fault.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Do the action; print its answer as JSON."""
    path = args.kubeconfig or os.environ.get("KUBECONFIG")
    if not path:
        raise SystemExit("kubesandbox fault: give --kubeconfig or set KUBECONFIG")
    client = FaultClient.from_kubeconfig(Path(path))
    try:
        answer = _act(client, args)
    except AdminError as exc:
        raise SystemExit(f"kubesandbox fault: {exc}") from None
    print(json.dumps(answer, indent=2))
    return 0


def _act(client: FaultClient, args: argparse.Namespace) -> Any:
    if args.action == "set":
        return client.set(args.rules, args.seed)
    if args.action == "show":
        return client.plan()
    if args.action == "clear":
        return client.clear()
    if args.action == "node":
        return {"evicted": client.node_ready(args.name, args.ready, args.seconds)}
    namespace, _, pod = args.pod.partition("/")
    if args.action == "kill":
        return {"killed": client.kill(namespace, pod, args.children)}
    client.evict(namespace, pod)
    return {"evicted": pod}
