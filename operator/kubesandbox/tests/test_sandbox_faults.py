"""Fault injection end to end: API faults as real clients see them, selected by namespace
and user agent, and the kubelet's faults (a pod's processes killed, a pod evicted, a node
lost) as the API then shows them."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubesandbox.apiserver.http import requestlog
from kubesandbox.testing import RunningSandbox, start_sandbox, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def faults_ns(sandbox: RunningSandbox) -> Iterator[str]:
    """A namespace of the session sandbox; the fault plan is cleared after the test."""
    with sandbox.namespace("faults") as name:
        try:
            yield name
        finally:
            sandbox.faults.clear()


def _get(sandbox: RunningSandbox, path: str) -> http.client.HTTPResponse:
    """A GET with the admin's token that returns the response whatever its status."""
    request = urllib.request.Request(sandbox.url + path, headers=sandbox.headers())
    try:
        response: http.client.HTTPResponse = sandbox.urlopen(request)
    except urllib.error.HTTPError as refused:
        return refused  # type: ignore[return-value]
    return response


def _logged(sandbox: RunningSandbox, path: str) -> list[dict[str, Any]]:
    entries = requestlog.read(sandbox.state_dir / requestlog.FILENAME)
    return [e for e in entries if e["path"] == path]


def _pod(name: str, script: str, **spec: Any) -> str:
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "main", "image": "sh", "command": ["sh", "-c", script]}],
            **spec,
        },
    }
    return json.dumps(body)


def _status(sandbox: RunningSandbox, faults_ns: str, pod: str) -> dict[str, Any]:
    return dict(sandbox.get(faults_ns, "pod", pod).get("status") or {})


# -- API faults --------------------------------------------------------------------------------


def test_a_429_carries_retry_after_and_is_logged_as_injected(
    sandbox: RunningSandbox, faults_ns: str
) -> None:
    sandbox.faults.set([f"error:code=429,seconds=3,namespaces={faults_ns}"])
    path = f"/api/v1/namespaces/{faults_ns}/configmaps"
    response = _get(sandbox, path)
    assert response.status == 429
    assert response.headers["Retry-After"] == "3"
    body = json.loads(response.read())
    assert (body["reason"], body["details"]) == ("TooManyRequests", {"retryAfterSeconds": 3})
    assert _logged(sandbox, path)[-1]["fault"] == "error:429"
    assert sandbox.faults.clear()["injected"] == {"error:429": 1}


def test_a_conflict_refuses_a_patch_and_nothing_else(
    sandbox: RunningSandbox, faults_ns: str
) -> None:
    sandbox.kubectl("create", "configmap", "-n", faults_ns, "c", "--from-literal=k=v")
    sandbox.faults.set([f"conflict:namespaces={faults_ns}"])
    patched = sandbox.kubectl(
        "patch", "configmap", "-n", faults_ns, "c", "-p", '{"data":{"k":"w"}}', check=False
    )
    assert patched.returncode != 0
    assert "Conflict" in patched.stderr and "the object has been modified" in patched.stderr
    assert sandbox.get(faults_ns, "configmap", "c")["data"] == {"k": "v"}  # reads are not faulted


def test_faults_select_by_user_agent(sandbox: RunningSandbox, faults_ns: str) -> None:
    sandbox.faults.set([f"error:code=503,namespaces={faults_ns},user_agents=Python-urllib/"])
    path = f"/api/v1/namespaces/{faults_ns}/secrets"
    assert _get(sandbox, path).status == 503
    assert sandbox.kubectl("get", "secrets", "-n", faults_ns).returncode == 0


def test_a_gone_watch_ends_with_a_410_expired_event(
    sandbox: RunningSandbox, faults_ns: str
) -> None:
    sandbox.faults.set([f"gone:namespaces={faults_ns}"])
    with _get(
        sandbox, f"/api/v1/namespaces/{faults_ns}/configmaps?watch=true&resourceVersion=1"
    ) as w:
        event = json.loads(w.readline())
    assert event["type"] == "ERROR"
    assert (event["object"]["code"], event["object"]["reason"]) == (410, "Expired")


def test_a_dropped_watch_is_cut_without_an_end_of_stream(
    sandbox: RunningSandbox, faults_ns: str
) -> None:
    sandbox.faults.set([f"drop:seconds=1,namespaces={faults_ns}"])
    with (
        _get(sandbox, f"/api/v1/namespaces/{faults_ns}/configmaps?watch=true") as watch,
        pytest.raises((http.client.IncompleteRead, ConnectionError)),
    ):
        watch.read()  # a watch that ended cleanly would return here


def test_stalled_and_slow_requests_are_answered_late_and_logged(
    sandbox: RunningSandbox, faults_ns: str
) -> None:
    sandbox.faults.set(
        [f"stall:seconds=1,namespaces={faults_ns}", f"slow:seconds=0.1,namespaces={faults_ns}"]
    )
    path = f"/api/v1/namespaces/{faults_ns}/services"
    assert _get(sandbox, path).status == 200
    assert _logged(sandbox, path)[-1]["fault"] == "stall,slow"


# -- the kubelet's faults ----------------------------------------------------------------------


def test_a_killed_pod_ends_with_137(sandbox: RunningSandbox, faults_ns: str) -> None:
    sandbox.kubectl("apply", "-n", faults_ns, "-f", "-", input=_pod("victim", "exec sleep 600"))
    wait_for("running", lambda: _status(sandbox, faults_ns, "victim").get("phase") == "Running")
    assert sandbox.faults.kill(faults_ns, "victim") == 1
    status = wait_for(
        "failed", lambda: (s := _status(sandbox, faults_ns, "victim"))["phase"] == "Failed" and s
    )
    assert status["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 137


def test_killing_the_children_leaves_the_container_process(
    sandbox: RunningSandbox, faults_ns: str
) -> None:
    script = "sleep 600 & echo started; wait $!; echo child-ended-$?"
    sandbox.kubectl("apply", "-n", faults_ns, "-f", "-", input=_pod("parent", script))
    logs = lambda: sandbox.kubectl("logs", "-n", faults_ns, "parent", check=False).stdout  # noqa: E731
    wait_for("the child", lambda: "started" in logs())
    assert sandbox.faults.kill(faults_ns, "parent", children_only=True) == 1
    wait_for("success", lambda: _status(sandbox, faults_ns, "parent").get("phase") == "Succeeded")
    assert "child-ended-137" in logs()


def test_an_evicted_pod_fails_with_reason_evicted(sandbox: RunningSandbox, faults_ns: str) -> None:
    sandbox.kubectl("apply", "-n", faults_ns, "-f", "-", input=_pod("pressed", "exec sleep 600"))
    wait_for("running", lambda: _status(sandbox, faults_ns, "pressed").get("phase") == "Running")
    sandbox.faults.evict(faults_ns, "pressed")
    status = wait_for(
        "evicted", lambda: (s := _status(sandbox, faults_ns, "pressed"))["phase"] == "Failed" and s
    )
    assert status["reason"] == "Evicted"
    disruption = next(c for c in status["conditions"] if c["type"] == "DisruptionTarget")
    assert (disruption["status"], disruption["reason"]) == ("True", "TerminationByKubelet")
    assert status["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 137
    assert sandbox.faults.injected()["evict"] == 1


def test_a_lost_node_evicts_its_pods_and_takes_no_new_ones_until_it_returns(
    tmp_path: Path,
) -> None:
    with start_sandbox(tmp_path, "--nodes", "1", "--simulated-nodes", "1") as sandbox:
        on_node = {"nodeName": "sandbox-node-0"}
        sandbox.kubectl("apply", "-f", "-", input=_pod("lost", "exec sleep 600", **on_node))
        sandbox.kubectl(
            "apply",
            "-f",
            "-",
            input=_pod(
                "stays",
                "exec sleep 600",
                **on_node,
                tolerations=[
                    {
                        "key": "node.kubernetes.io/unreachable",
                        "operator": "Exists",
                        "effect": "NoExecute",
                    }
                ],
            ),
        )
        for pod in ("lost", "stays"):
            wait_for(pod, lambda p=pod: _status(sandbox, "default", p).get("phase") == "Running")  # type: ignore[misc]
        assert sandbox.faults.node_ready("sandbox-node-0", False) == ["lost"]
        node = sandbox.get("", "node", "sandbox-node-0")
        ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
        assert (ready["status"], ready["reason"]) == ("Unknown", "NodeStatusUnknown")
        assert {t["effect"] for t in node["spec"]["taints"]} == {"NoSchedule", "NoExecute"}
        wait_for("the pod gone", lambda: "lost" not in sandbox.kubectl("get", "pods").stdout)
        selector = {"nodeSelector": {"kubernetes.io/hostname": "sandbox-node-0"}}
        sandbox.kubectl("apply", "-f", "-", input=_pod("later", "exec sleep 600", **selector))
        wait_for(
            "unschedulable",
            lambda: any(
                c.get("reason") == "Unschedulable"
                for c in _status(sandbox, "default", "later").get("conditions", ())
            ),
        )
        sandbox.faults.node_ready("sandbox-node-0", True)
        wait_for(
            "scheduled", lambda: _status(sandbox, "default", "later").get("phase") == "Running"
        )
        assert "taints" not in sandbox.get("", "node", "sandbox-node-0")["spec"]
