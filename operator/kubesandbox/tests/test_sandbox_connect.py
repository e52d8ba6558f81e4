"""exec, attach and port-forward with the real kubectl 1.33 (WebSocket v5 for exec and
attach, SPDY/3.1 tunnelled in a WebSocket for port-forward) and the official Python client
(`kubernetes.stream`: v5/v4 channels for both)."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.stream import portforward, stream

from kubesandbox.apiserver.http import requestlog
from kubesandbox.testing import RunningSandbox, free_port, stop_process, tool, wait_for

pytestmark = pytest.mark.integration

WEB = """
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
  volumes: [{name: data, emptyDir: {}}]
  containers:
  - name: main
    image: python:3.11
    command: [python, -m, http.server, "8080", --directory, /data]
    workingDir: /data
    env: [{name: GREETING, value: hello}]
    volumeMounts: [{name: data, mountPath: /data}]
    ports: [{containerPort: 8080, name: http}]
    readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: http}]
---
apiVersion: v1
kind: Pod
metadata: {name: echo}
spec:
  containers:
  - {name: main, image: busybox, command: [cat], stdin: true}
"""


@pytest.fixture(scope="module")
def web_ns(sandbox: RunningSandbox) -> Iterator[str]:
    """A namespace with a ready web server pod `web`, a Service `web` in front of it, and a
    pod `echo` whose container echoes its stdin."""
    with sandbox.namespace("connect") as name:
        sandbox.apply(name, WEB)
        for pod in ("web", "echo"):
            wait_for(f"{pod} ready", lambda pod=pod: _ready(sandbox, name, pod))
        yield name


def _ready(sandbox: RunningSandbox, web_ns: str, pod: str) -> bool:
    statuses = sandbox.get(web_ns, "pod", pod)["status"].get("containerStatuses") or ()
    return bool(statuses) and all(c["ready"] for c in statuses)


def kubectl(sandbox: RunningSandbox, web_ns: str, *args: str, stdin: str | None = None) -> Any:
    return sandbox.kubectl("-n", web_ns, *args, input=stdin, check=False)


def test_exec_runs_in_the_pods_environment(sandbox: RunningSandbox, web_ns: str) -> None:
    script = 'echo "$GREETING from $(pwd) at $HOSTNAME"; cat /dev/termination-log; echo x > /data/f'
    done = kubectl(sandbox, web_ns, "exec", "web", "--", "sh", "-c", script)
    assert done.returncode == 0, done.stderr
    pod = sandbox.get(web_ns, "pod", "web")
    lines = done.stdout.splitlines()
    assert lines[0].startswith("hello from ") and lines[0].endswith(" at web")
    workdir = lines[0].removeprefix("hello from ").removesuffix(" at web")
    assert workdir.endswith(f"/pods/{pod['metadata']['uid']}/volumes/data")  # /data, rewritten
    # the volume is the container's: the server serves what exec wrote there
    url = f"http://{pod['status']['podIP']}:8080/f"
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == b"x\n"


def test_exec_keeps_stdout_and_stderr_apart_and_passes_the_exit_code(
    sandbox: RunningSandbox, web_ns: str
) -> None:
    done = kubectl(
        sandbox, web_ns, "exec", "web", "--", "sh", "-c", "echo out; echo err >&2; exit 3"
    )
    assert (done.returncode, done.stdout) == (3, "out\n")
    assert done.stderr.startswith("err\n")
    assert "command terminated with exit code 3" in done.stderr


def test_exec_with_stdin(sandbox: RunningSandbox, web_ns: str) -> None:
    done = kubectl(sandbox, web_ns, "exec", "-i", "web", "--", "wc", "-l", stdin="a\nb\nc\n")
    assert (done.returncode, done.stdout.strip()) == (0, "3")


def test_exec_resolves_names_and_binds_like_the_pod(sandbox: RunningSandbox, web_ns: str) -> None:
    code = "import socket; print(socket.gethostbyname('localhost'), socket.gethostname())"
    done = kubectl(sandbox, web_ns, "exec", "web", "--", "python", "-c", code)
    pod_ip = sandbox.get(web_ns, "pod", "web")["status"]["podIP"]
    assert done.stdout.split() == [pod_ip, "web"], done.stderr


def test_exec_errors_name_what_is_wrong(sandbox: RunningSandbox, web_ns: str) -> None:
    wrong = kubectl(sandbox, web_ns, "exec", "web", "-c", "nope", "--", "true")
    assert "container nope is not valid for pod web" in wrong.stderr
    missing = kubectl(sandbox, web_ns, "exec", "web", "--", "no-such-command")
    assert missing.returncode != 0
    assert 'exec: "no-such-command": executable file not found in $PATH' in missing.stderr


@pytest.mark.skipif(shutil.which("script") is None, reason="needs `script` for a terminal")
def test_exec_with_a_terminal(sandbox: RunningSandbox, web_ns: str) -> None:
    command = f"{tool('kubectl')} --kubeconfig {sandbox.kubeconfig} -n {web_ns} exec -it web -- "
    command += "sh -c 'tty; stty size'"
    done = subprocess.run(
        ["script", "-q", "-e", "-c", f"stty cols 100 rows 30; {command}", "/dev/null"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip
    assert "/dev/pts/" in done.stdout and "30 100" in done.stdout, done.stdout + done.stderr


def _terminal_exec(sandbox: RunningSandbox, web_ns: str, command: list[str]) -> Any:
    """The Python client's exec of `command` in `web` on a terminal, left open."""
    api = client.CoreV1Api(config.new_client_from_config(str(sandbox.kubeconfig)))
    return stream(
        api.connect_get_namespaced_pod_exec, "web", web_ns, command=command,
        stdin=True, stdout=True, stderr=True, tty=True, _preload_content=False,
    )  # fmt: skip


def test_a_terminal_starts_at_the_clients_first_size_when_it_comes_late(
    sandbox: RunningSandbox, web_ns: str
) -> None:
    # a client slowed down by a loaded machine: its first size comes after the upgrade,
    # and the command still starts on a terminal of that size (it reads it once, at start)
    session = _terminal_exec(sandbox, web_ns, ["stty", "size"])
    time.sleep(0.25)
    session.write_channel(4, json.dumps({"Width": 100, "Height": 30}))
    session.run_forever(timeout=30)
    assert session.read_stdout().strip() == "30 100"


def test_a_terminal_whose_client_sends_no_size_starts_at_0x0(
    sandbox: RunningSandbox, web_ns: str
) -> None:
    session = _terminal_exec(sandbox, web_ns, ["stty", "size"])
    session.run_forever(timeout=30)
    assert session.read_stdout().strip() == "0 0"


def test_the_request_log_names_the_connect_subresources(
    sandbox: RunningSandbox, web_ns: str
) -> None:
    kubectl(sandbox, web_ns, "exec", "web", "--", "true")
    used = requestlog.permissions(
        requestlog.read(sandbox.state_dir / requestlog.FILENAME), user_agent="kubectl/"
    )
    assert ("", "pods/exec", "get") in used  # kube 1.33 authorizes a WebSocket exec as get


@contextlib.contextmanager
def forwarding(sandbox: RunningSandbox, web_ns: str, target: str, remote: int) -> Iterator[int]:
    """`kubectl port-forward TARGET LOCAL:REMOTE` running; yields the local port."""
    local = free_port()
    command = [tool("kubectl"), "--kubeconfig", str(sandbox.kubeconfig), "-n", web_ns]
    command += ["port-forward", target, f"{local}:{remote}"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for(f"{target} forwarded", lambda: _listening(local), timeout=30)
        yield local
    finally:
        stop_process(proc)


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


def get(port: int, path: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
        return response.status, response.read()


def test_port_forward_to_a_pod_carries_http(sandbox: RunningSandbox, web_ns: str) -> None:
    kubectl(sandbox, web_ns, "exec", "web", "--", "sh", "-c", "echo pod > /data/hello")
    with forwarding(sandbox, web_ns, "pod/web", 8080) as port:
        assert get(port, "/hello") == (200, b"pod\n")
        assert get(port, "/hello") == (200, b"pod\n")  # a second connection, same tunnel
    used = requestlog.permissions(
        requestlog.read(sandbox.state_dir / requestlog.FILENAME), user_agent="kubectl/"
    )
    assert ("", "pods/portforward", "get") in used


def test_port_forward_to_a_service_reaches_its_pod(sandbox: RunningSandbox, web_ns: str) -> None:
    kubectl(sandbox, web_ns, "exec", "web", "--", "sh", "-c", "echo svc > /data/svc")
    with forwarding(sandbox, web_ns, "svc/web", 80) as port:
        assert get(port, "/svc") == (200, b"svc\n")


def test_port_forward_to_a_closed_port_reports_the_error(
    sandbox: RunningSandbox, web_ns: str
) -> None:
    local = free_port()
    command = [tool("kubectl"), "--kubeconfig", str(sandbox.kubeconfig), "-n", web_ns]
    proc = subprocess.Popen(
        [*command, "port-forward", "pod/web", f"{local}:9"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        wait_for("forwarding", lambda: _listening(local), timeout=30)
        with contextlib.suppress(OSError), urllib.request.urlopen(f"http://127.0.0.1:{local}/"):
            pass
        out, _ = proc.communicate(timeout=30)  # kubectl ends: it lost the connection
    finally:
        stop_process(proc)
    assert "dial tcp" in out and ":9: connect: connection refused" in out


def test_the_python_clients_exec_and_port_forward(sandbox: RunningSandbox, web_ns: str) -> None:
    api = client.CoreV1Api(config.new_client_from_config(str(sandbox.kubeconfig)))
    command = ["sh", "-c", "cat; echo done >&2; exit 4"]
    session = stream(
        api.connect_get_namespaced_pod_exec, "web", web_ns, command=command,
        stdin=True, stdout=True, stderr=True, tty=False, _preload_content=False,
    )  # fmt: skip
    session.write_stdin("from python\n")
    session.close_channel(0)  # v5: stdin's end
    session.run_forever(timeout=30)
    assert session.read_stdout() == "from python\n"
    assert session.read_stderr() == "done\n"
    assert session.returncode == 4

    kubectl(sandbox, web_ns, "exec", "web", "--", "sh", "-c", "echo py > /data/py")
    forward = portforward(api.connect_get_namespaced_pod_portforward, "web", web_ns, ports="8080")
    sock = forward.socket(8080)
    sock.setblocking(True)
    sock.sendall(b"GET /py HTTP/1.0\r\n\r\n")
    answer = b""
    while chunk := sock.recv(65536):
        answer += chunk
    assert answer.startswith(b"HTTP/1.0 200") and answer.endswith(b"\r\n\r\npy\n")
    assert forward.error(8080) is None


def test_attach_follows_the_container_and_feeds_its_stdin(
    sandbox: RunningSandbox, web_ns: str, tmp_path: Path
) -> None:
    # `echo` runs cat with stdin: true, so what is typed into the attach comes back out
    out = tmp_path / "attach.out"
    command = [tool("kubectl"), "--kubeconfig", str(sandbox.kubeconfig), "-n", web_ns]
    with out.open("w") as sink:
        proc = subprocess.Popen(
            [*command, "attach", "-i", "echo"], stdin=subprocess.PIPE, stdout=sink, text=True
        )
    try:
        assert proc.stdin is not None
        proc.stdin.write("typed into the attach\n")
        proc.stdin.flush()
        wait_for("the echo", lambda: "typed into the attach" in out.read_text())
    finally:
        stop_process(proc)


def test_a_spdy_upgrade_is_refused_saying_why(sandbox: RunningSandbox, web_ns: str) -> None:
    url = f"{sandbox.url}/api/v1/namespaces/{web_ns}/pods/web/exec?command=true&stdout=true"
    headers = {"Connection": "Upgrade", "Upgrade": "SPDY/3.1", **sandbox.headers()}
    request = urllib.request.Request(url, method="POST", headers=headers)
    with pytest.raises(urllib.error.HTTPError) as refused:
        sandbox.urlopen(request)
    assert refused.value.code == 400
    body = json.loads(refused.value.read())
    assert "WebSocket only" in body["message"] and "SPDY is not supported" in body["message"]


def test_a_pod_of_a_simulated_node_has_nothing_to_exec_into(
    sandbox: RunningSandbox, web_ns: str
) -> None:
    sandbox.apply(
        web_ns,
        """
        apiVersion: v1
        kind: Pod
        metadata: {name: sim}
        spec:
          nodeSelector: {type: simulated}
          containers: [{name: main, image: sim, command: [sleep, inf]}]
        """,
    )
    wait_for(
        "sim running", lambda: sandbox.get(web_ns, "pod", "sim")["status"].get("phase") == "Running"
    )
    done = kubectl(sandbox, web_ns, "exec", "sim", "--", "true")
    assert done.returncode != 0
    assert "runs no processes" in done.stderr and "sandbox-sim-" in done.stderr
