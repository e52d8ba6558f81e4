"""The `bigmodel` command: one entry point for users, the operator image and the tests."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from bigmodel import __version__
from kubesandbox import cli as sandbox_cli


def _cmd_version(args: argparse.Namespace) -> int:
    print(f"bigmodel-operator {__version__}")
    return 0


def _cmd_crds(args: argparse.Namespace) -> int:
    from bigmodel.api.crds import crds, write_crds
    from bigmodel.api.reference import render

    for path in write_crds(Path(args.out)):
        print(path)
    if args.reference:
        reference = Path(args.reference)
        reference.parent.mkdir(parents=True, exist_ok=True)
        reference.write_text(render(crds()))
        print(reference)
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from bigmodel.controller.main import run_operator

    return run_operator(
        namespaces=args.namespace,
        health_port=args.health_port,
        metrics_port=args.metrics_port,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bigmodel",
        description="Run large models on Kubernetes: torchrun training jobs (BigModelJob) "
        "and HTTP model services (BigModelService), with per-node task telemetry.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("version", help="print the version and exit")
    p.set_defaults(func=_cmd_version)

    p = sub.add_parser("crds", help="write the CustomResourceDefinition YAML files")
    p.add_argument("--out", default="crds", help="directory to write into (default: crds)")
    p.add_argument("--reference", metavar="FILE", help="also write the Markdown API reference")
    p.set_defaults(func=_cmd_crds)

    p = sub.add_parser(
        "run",
        help="start the operator (the operator image's entry point)",
        description="Start the operator against the cluster of KUBECONFIG, or the in-cluster "
        "configuration when running in a pod.",
    )
    p.add_argument(
        "--namespace",
        action="append",
        default=[],
        metavar="NS",
        help="watch only this namespace (repeatable); default: all namespaces",
    )
    p.add_argument("--health-port", type=int, default=8081, help="port of /healthz (default 8081)")
    p.add_argument("--metrics-port", type=int, default=8080, help="port of /metrics (default 8080)")
    p.set_defaults(func=_cmd_run)

    sandbox_cli.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
