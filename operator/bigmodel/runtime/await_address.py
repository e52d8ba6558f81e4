"""Run a command once a TCP address accepts connections: the Dask client and the Spark
driver start beside their scheduler or master, which may take a minute to listen (a JVM on
a busy node); a client that gave up first would count as a failure and restart the cluster.

    python -m bigmodel.runtime.await_address HOST:PORT [--timeout SECONDS] -- COMMAND...

Replaces itself with COMMAND (same process, so signals and the exit code are COMMAND's);
exits 1 with a message naming the address when it does not answer within the timeout.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from collections.abc import Sequence

DEFAULT_TIMEOUT_SECONDS = 600.0
RETRY_SECONDS = 0.5


def answers(host: str, port: int, timeout: float = 2.0) -> bool:
    """Whether `host:port` accepts a TCP connection now."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until_answers(host: str, port: int, timeout: float) -> bool:
    """Poll `host:port` until it accepts a connection; False after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not answers(host, port):
        if time.monotonic() >= deadline:
            return False
        time.sleep(RETRY_SECONDS)
    return True


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: expected HOST:PORT")
    return host, int(port)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bigmodel.runtime.await_address")
    parser.add_argument("address", type=_address, help="HOST:PORT to wait for")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_SECONDS)
    parser.add_argument("command", nargs="+", help="the command to run then, after --")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    host, port = args.address
    if not wait_until_answers(host, port, args.timeout):
        print(f"{host}:{port} did not answer within {args.timeout:g}s", file=sys.stderr)
        return 1
    os.execvp(args.command[0], args.command)


if __name__ == "__main__":
    sys.exit(main())
