"""Run a sandbox for tests: `with start_sandbox(dir) as sb: sb.kubectl("get", "pods")`.

The sandbox runs as `kubesandbox up` in a subprocess (the same entry point a user starts),
so tests exercise exactly what users run. `RunningSandbox.faults` turns fault injection
on and off at run time and kills, evicts or takes away pods and nodes. kubectl and helm are
looked up next to the Python interpreter first (where `make` installs them into
.venv/bin), then on PATH.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from kubesandbox.faults.client import FaultClient

T = TypeVar("T")

READY = "sandbox ready at "
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    """Path of a client binary: next to this interpreter, else on PATH, else the bare name."""
    local = BIN / name
    return str(local) if local.exists() else shutil.which(name) or name


@dataclass
class RunningSandbox:
    """A sandbox started as a subprocess: its kubeconfig, state dir, URL and process id."""

    kubeconfig: Path
    state_dir: Path
    url: str
    pid: int | None = None
    """The `kubesandbox up` process (benchmarks read its CPU time)."""

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run the real kubectl against this sandbox (stdout/stderr captured as text)."""
        return subprocess.run(
            [tool("kubectl"), "--kubeconfig", str(self.kubeconfig), *args],
            input=input,
            capture_output=True,
            text=True,
            check=check,
            timeout=60,
        )

    def helm(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run the real helm against this sandbox; raises when it fails."""
        return subprocess.run(
            [tool("helm"), "--kubeconfig", str(self.kubeconfig), *args],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )

    def apply(self, namespace: str, manifest: str) -> None:
        """`kubectl apply` a YAML document (dedented) in `namespace`."""
        self.kubectl("apply", "-n", namespace, "-f", "-", input=textwrap.dedent(manifest))

    def get(self, namespace: str, *what: str) -> Any:
        """`kubectl get ... -o json` in `namespace`, parsed."""
        return json.loads(self.kubectl("get", "-n", namespace, *what, "-o", "json").stdout)

    @contextlib.contextmanager
    def namespace(self, prefix: str) -> Iterator[str]:
        """A fresh namespace `<prefix>-<random>`, deleted (without waiting) afterwards."""
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        self.kubectl("create", "namespace", name)
        try:
            yield name
        finally:
            self.kubectl("delete", "namespace", name, "--wait=false", check=False)

    def env(self) -> dict[str, str]:
        """The environment of a client process that should use this sandbox."""
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    @property
    def faults(self) -> FaultClient:
        """The admin routes: API faults on and off, pods killed or evicted, nodes lost."""
        return FaultClient.from_kubeconfig(self.kubeconfig)

    def headers(self) -> dict[str, str]:
        """The `Authorization` header of the kubeconfig's user, for raw HTTP calls."""
        return {"Authorization": f"Bearer {self.faults.token}"}

    def tls(self) -> ssl.SSLContext:
        """A TLS context that trusts the sandbox's CA, for raw HTTPS calls."""
        tls = self.faults.tls
        assert tls is not None
        return tls

    def urlopen(self, request: urllib.request.Request | str, timeout: float = 10) -> Any:
        """`urllib.request.urlopen` of a request to this sandbox, trusting its CA."""
        return urllib.request.urlopen(request, timeout=timeout, context=self.tls())


def wait_for(
    what: str,
    check: Callable[[], T | None],
    timeout: float = 60.0,
    context: Callable[[], str] | None = None,
) -> T:
    """Poll `check()` until it returns something truthy, and return that; on time-out, fail
    naming `what` and showing `context()` (e.g. the object's YAML)."""
    deadline = time.monotonic() + timeout
    while True:
        if value := check():
            return value
        if time.monotonic() > deadline:
            shown = f"\n{context()}" if context else ""
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}{shown}")
        time.sleep(0.2)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def probe(port: int, path: str, timeout: float = 5) -> tuple[int, dict[str, Any]]:
    """The HTTP code and JSON body of GET `path` on 127.0.0.1:`port`, as a kubelet's HTTP
    probe sees it (0 and no body: nothing answered within `timeout`)."""
    url = f"http://127.0.0.1:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), _json_body(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, _json_body(exc.read())
    except OSError:
        return 0, {}


def _json_body(data: bytes) -> dict[str, Any]:
    try:
        found = json.loads(data or b"{}")
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def answers_ok(port: int, path: str) -> bool:
    """Whether GET `path` on 127.0.0.1:`port` answers 200 within 2 seconds (a readiness
    endpoint such as `/readyz`, polled until a process is ready)."""
    return probe(port, path, timeout=2)[0] == 200


@contextlib.contextmanager
def probing(port: int, path: str, every: float = 0.5) -> Iterator[Counter[int]]:
    """Probe `path` (e.g. a liveness endpoint) every `every` seconds from a thread while the
    block runs, as a kubelet would; the answers by HTTP code (0: none within 5 s)."""
    codes: Counter[int] = Counter()
    done = threading.Event()

    def keep_probing() -> None:
        while not done.wait(every):
            codes[probe(port, path)[0]] += 1

    thread = threading.Thread(target=keep_probing, name="probing", daemon=True)
    thread.start()
    try:
        yield codes
    finally:
        done.set()
        thread.join()


def stop_process(
    proc: subprocess.Popen[bytes], sig: signal.Signals = signal.SIGINT, timeout: float = 15
) -> None:
    """Send `sig`, wait up to `timeout` seconds for the process to exit, then kill it."""
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _wait_ready(proc: subprocess.Popen[bytes], log: Path, timeout: float) -> str:
    """The sandbox's URL once its log says it is ready; raises if it exits or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith(READY):
                return line.split()[-1]
        if proc.poll() is not None:
            raise RuntimeError(f"sandbox exited {proc.returncode}: {log.read_text()[-2000:]}")
        time.sleep(0.05)
    raise RuntimeError(f"sandbox not ready after {timeout:.0f} s: {log.read_text()[-2000:]}")


@contextlib.contextmanager
def start_sandbox(state_dir: Path, *options: str, timeout: float = 60) -> Iterator[RunningSandbox]:
    """Run `kubesandbox up` until the block ends; its output goes to STATE_DIR/sandbox.log."""
    state_dir.mkdir(parents=True, exist_ok=True)
    kubeconfig = state_dir / "kubeconfig"
    log = state_dir / "sandbox.log"
    command = [str(BIN / "kubesandbox"), "up", "--state-dir", str(state_dir)]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*command, "--kubeconfig", str(kubeconfig), *options],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        url = _wait_ready(proc, log, timeout)
        yield RunningSandbox(kubeconfig, state_dir, url, proc.pid)
    finally:
        stop_process(proc)
