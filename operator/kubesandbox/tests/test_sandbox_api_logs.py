"""Pod logs through the sandbox API: kubectl logs with its container, tail and previous
options, and following a log until the pod finishes."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kubesandbox.testing import tool, wait_for

pytestmark = pytest.mark.integration


def _simulated_pod(name: str, containers: tuple[str, ...] = ("main",)) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "nodeSelector": {"type": "simulated"},
            "containers": [{"name": c, "image": "busybox"} for c in containers],
        },
    }


def _write_log(sandbox: Any, ns: str, pod: str, container: str, text: str, **kw: Any) -> Path:
    """Write a container log where the kubelet would (simulated pods have no process)."""
    name = f"{container}.previous.log" if kw.get("previous") else f"{container}.log"
    path = sandbox.state_dir / "logs" / ns / pod / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write(text)
    return path


def test_pod_logs_tail_previous_and_container(sandbox: Any, api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_pod(ns, _simulated_pod("logs", ("main", "side")))
    _write_log(sandbox, ns, "logs", "main", "one\ntwo\nthree\n")
    _write_log(sandbox, ns, "logs", "side", "side car\n")
    _write_log(sandbox, ns, "logs", "main", "crashed run\n", previous=True)
    assert sandbox.kubectl("logs", "logs", "-n", ns, "-c", "main").stdout == "one\ntwo\nthree\n"
    assert sandbox.kubectl("logs", "logs", "-n", ns, "-c", "main", "--tail=2").stdout == (
        "two\nthree\n"
    )
    assert sandbox.kubectl("logs", "logs", "-n", ns, "-c", "side").stdout == "side car\n"
    assert sandbox.kubectl("logs", "logs", "-n", ns, "-c", "main", "-p").stdout == ("crashed run\n")
    with pytest.raises(ApiException) as exc:  # kubectl picks the first container itself
        core.read_namespaced_pod_log("logs", ns)
    assert "a container name must be specified" in json.loads(exc.value.body)["message"]


def test_pod_logs_follow_until_the_pod_finishes(
    sandbox: Any, api: client.ApiClient, ns: str
) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_pod(ns, _simulated_pod("follow"))
    wait_for(
        "the pod to run", lambda: core.read_namespaced_pod("follow", ns).status.phase == "Running"
    )
    _write_log(sandbox, ns, "follow", "main", "first\n")
    kubectl = [tool("kubectl"), "--kubeconfig", str(sandbox.kubeconfig)]
    follower = subprocess.Popen(
        [*kubectl, "logs", "-f", "follow", "-n", ns],
        stdout=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert follower.stdout is not None
    threading.Thread(target=lambda: [lines.put(x) for x in follower.stdout], daemon=True).start()
    try:
        assert lines.get(timeout=15) == "first\n"
        _write_log(sandbox, ns, "follow", "main", "second\n")
        assert lines.get(timeout=15) == "second\n"
        core.patch_namespaced_pod(
            "follow", ns, {"metadata": {"annotations": {"kubesandbox.dev/exit-code": "0"}}}
        )
        assert follower.wait(timeout=15) == 0
    finally:
        follower.kill()
