"""A container's run as the kubelet reports it, with real processes: a container whose env
refers to a missing secret waits (CreateContainerConfigError) until it exists; startup probes
gate readiness and liveness and restart a container that never starts; termination messages
come from the container's own file or, on error, from its log; a preStop hook runs before
the container gets SIGTERM."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest

from kubesandbox.testing import RunningSandbox, start_sandbox, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    """A private sandbox with a 1 s restart back-off."""
    with start_sandbox(tmp_path_factory.mktemp("containers"), "--restart-backoff", "1") as sb:
        yield sb


def container(sandbox: RunningSandbox, ns: str, pod: str) -> Any:
    """The status of a pod's only container."""
    return sandbox.get(ns, "pod", pod)["status"]["containerStatuses"][0]


def test_a_missing_secret_holds_the_container_until_it_is_created(
    sandbox: RunningSandbox, ns: str
) -> None:
    sandbox.apply(
        ns,
        """
        apiVersion: v1
        kind: Pod
        metadata: {name: needs}
        spec:
          restartPolicy: Never
          containers:
          - name: main
            image: python:3.11
            command: [sh, -c, 'echo "token=$TOKEN"']
            env:
            - name: TOKEN
              valueFrom: {secretKeyRef: {name: later, key: token}}
        """,
    )

    def waiting() -> Any:
        return container(sandbox, ns, "needs")["state"].get("waiting", {})

    wait_for("a config error", lambda: waiting().get("reason") == "CreateContainerConfigError")
    assert waiting()["message"] == 'secret "later" not found'
    assert sandbox.get(ns, "pod", "needs")["status"]["phase"] == "Pending"
    sandbox.kubectl("create", "secret", "generic", "later", "-n", ns, "--from-literal=token=abc")
    wait_for(
        "needs Succeeded", lambda: sandbox.get(ns, "pod", "needs")["status"]["phase"] == "Succeeded"
    )
    assert sandbox.kubectl("logs", "needs", "-n", ns).stdout == "token=abc\n"


def test_a_startup_probe_holds_readiness_until_it_passes(sandbox: RunningSandbox, ns: str) -> None:
    # The server is "started" once it has written its flag file, 2 s after it began.
    sandbox.apply(
        ns,
        """
        apiVersion: v1
        kind: Pod
        metadata: {name: slow}
        spec:
          volumes: [{name: work, emptyDir: {}}]
          containers:
          - name: main
            image: python:3.11
            command: [sh, -c, "sleep 2; touch /work/started; exec sleep 600"]
            volumeMounts: [{name: work, mountPath: /work}]
            startupProbe:
              exec: {command: [sh, -c, "test -f $KUBESANDBOX_MOUNT_WORK/started"]}
              periodSeconds: 1
              failureThreshold: 30
        """,
    )
    wait_for("slow running", lambda: "running" in container(sandbox, ns, "slow")["state"])
    early = container(sandbox, ns, "slow")
    assert not early["started"] and not early["ready"]  # the probe cannot pass for 2 s
    wait_for("slow started and ready", lambda: container(sandbox, ns, "slow")["ready"])
    assert container(sandbox, ns, "slow")["started"]


def test_a_container_that_never_starts_is_restarted(sandbox: RunningSandbox, ns: str) -> None:
    sandbox.apply(
        ns,
        """
        apiVersion: v1
        kind: Pod
        metadata: {name: stuck}
        spec:
          terminationGracePeriodSeconds: 1
          containers:
          - name: main
            image: python:3.11
            command: [sleep, "600"]
            startupProbe: {tcpSocket: {port: 9}, periodSeconds: 1, failureThreshold: 2}
            livenessProbe: {exec: {command: ["false"]}, periodSeconds: 1, failureThreshold: 1}
        """,
    )
    wait_for("a restart", lambda: container(sandbox, ns, "stuck")["restartCount"] >= 1)
    last = container(sandbox, ns, "stuck")["lastState"]["terminated"]
    assert last["exitCode"] == 143  # stopped with SIGTERM
    events = sandbox.get(ns, "events", "--field-selector", "involvedObject.name=stuck")
    messages = [e["message"] for e in events["items"] if e["reason"] == "Unhealthy"]
    assert any("Startup probe failed" in m for m in messages), messages
    assert not any("Liveness" in m for m in messages)  # liveness waits for startup


def test_the_termination_message_file_becomes_the_terminated_message(
    sandbox: RunningSandbox, ns: str
) -> None:
    # The default path, rewritten in the command to this container's own file.
    script = "echo 'model not found' > /dev/termination-log; exit 4"
    sandbox.apply(
        ns,
        f"""
        apiVersion: v1
        kind: Pod
        metadata: {{name: said}}
        spec:
          restartPolicy: Never
          containers:
          - name: main
            image: python:3.11
            command: [sh, -c, "{script}"]
          - name: custom
            image: python:3.11
            command: [sh, -c, 'printf done > "$WHY"']
            env: [{{name: WHY, value: /tmp/why}}]
            terminationMessagePath: /tmp/why
        """,
    )
    wait_for("said Failed", lambda: sandbox.get(ns, "pod", "said")["status"]["phase"] == "Failed")
    statuses = {
        c["name"]: c["state"]["terminated"]
        for c in sandbox.get(ns, "pod", "said")["status"]["containerStatuses"]
    }
    assert statuses["main"]["message"] == "model not found\n"
    assert statuses["main"]["exitCode"] == 4
    assert statuses["custom"]["message"] == "done"


def test_fallback_to_logs_on_error_quotes_the_log_tail_in_last_state(
    sandbox: RunningSandbox, ns: str
) -> None:
    program = textwrap.dedent(
        """\
        import sys
        print("loading the model", flush=True)
        sys.exit("ValueError: no such model")
        """
    )
    sandbox.apply(
        ns,
        f"""
        apiVersion: v1
        kind: Pod
        metadata: {{name: crash}}
        spec:
          restartPolicy: OnFailure
          containers:
          - name: main
            image: python:3.11
            command: [python, -c, {json.dumps(program)}]
            terminationMessagePolicy: FallbackToLogsOnError
        """,
    )
    wait_for("a restart", lambda: container(sandbox, ns, "crash")["restartCount"] >= 1)
    last = container(sandbox, ns, "crash")["lastState"]["terminated"]
    assert last["exitCode"] == 1
    assert last["message"] == "loading the model\nValueError: no such model\n"


def test_a_pre_stop_hook_runs_before_the_container_gets_sigterm(
    sandbox: RunningSandbox, ns: str
) -> None:
    program = textwrap.dedent(
        """\
        import os, pathlib, signal, sys, time
        mark, out = pathlib.Path(os.environ["MARK"]), pathlib.Path(os.environ["OUT"])
        def stop(*_):
            out.write_text("hook first" if mark.exists() else "TERM first")
            sys.exit(0)
        signal.signal(signal.SIGTERM, stop)
        while True:
            time.sleep(0.05)
        """
    )
    sandbox.apply(
        ns,
        f"""
        apiVersion: v1
        kind: Pod
        metadata: {{name: hooked}}
        spec:
          terminationGracePeriodSeconds: 20
          containers:
          - name: main
            image: python:3.11
            command: [python, -c, {json.dumps(program)}]
            env: [{{name: MARK, value: /kept/mark}}, {{name: OUT, value: /kept/out}}]
            volumeMounts: [{{name: kept, mountPath: /kept}}]
            lifecycle:
              preStop:
                exec: {{command: [sh, -c, 'sleep 1; touch "$MARK"']}}
          volumes: [{{name: kept, persistentVolumeClaim: {{claimName: kept}}}}]
        """,
    )
    wait_for("hooked Running", lambda: container(sandbox, ns, "hooked").get("ready"))
    sandbox.kubectl("delete", "pod", "hooked", "-n", ns, "--wait=true", "--timeout=60s")
    out = sandbox.state_dir / "volumes" / ns / "kept" / "out"
    assert out.read_text() == "hook first"
