"""The `bigmodel` command: one entry point for users, the operator image and the tests."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from bigmodel import __version__


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


def _cmd_sandbox(args: argparse.Namespace) -> int:
    try:
        from kubesandbox.cli import main as sandbox_main
    except ModuleNotFoundError as exc:
        if exc.name != "kubesandbox" and not (exc.name or "").startswith("kubesandbox."):
            raise
        print(
            "bigmodel sandbox: the kubesandbox package is not installed "
            "(pip install 'bigmodel-operator[sandbox]', or `make venv` in a checkout)",
            file=sys.stderr,
        )
        return 1
    return sandbox_main(args.args, prog="bigmodel sandbox")


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

    p = sub.add_parser(
        "sandbox",
        help="a local Kubernetes API for development and tests (one machine, not a cluster); "
        "`bigmodel sandbox up --help` for its options",
        add_help=False,
    )
    p.add_argument("args", nargs=argparse.REMAINDER, help="the kubesandbox command line")
    p.set_defaults(func=_cmd_sandbox)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "sandbox":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "sandbox":  # everything after `sandbox` is kubesandbox's, --help too
        args.args = [*extra, *args.args]
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
