"""Waiting for a server before running its client: the command runs once the address
answers, and a silent address fails with a message naming it."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time

from bigmodel.runtime.await_address import answers, wait_until_answers
from kubesandbox.testing import free_port


def test_an_address_nothing_listens_on_does_not_answer() -> None:
    assert not answers("127.0.0.1", free_port())


def test_the_wait_ends_once_a_server_starts_listening() -> None:
    port = free_port()
    server = socket.socket()

    def listen_later() -> None:
        time.sleep(1)
        server.bind(("127.0.0.1", port))
        server.listen()

    threading.Thread(target=listen_later, daemon=True).start()
    try:
        assert wait_until_answers("127.0.0.1", port, timeout=120)
    finally:
        server.close()


def test_the_command_runs_with_its_exit_code_once_the_address_answers() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        argv = ["-c", "raise SystemExit(7)"]
        done = subprocess.run(
            [sys.executable, "-m", "bigmodel.runtime.await_address", f"127.0.0.1:{port}", "--",
             sys.executable, *argv],
            timeout=120,
        )  # fmt: skip
    assert done.returncode == 7


def test_a_silent_address_fails_naming_it() -> None:
    port = free_port()
    done = subprocess.run(
        [sys.executable, "-m", "bigmodel.runtime.await_address", f"127.0.0.1:{port}",
         "--timeout", "0", "--", "true"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    assert f"127.0.0.1:{port} did not answer" in done.stderr
