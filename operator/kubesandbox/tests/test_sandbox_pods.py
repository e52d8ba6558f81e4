"""The process kubelet: pods run as real host processes, driven through real kubectl."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubesandbox.testing import RunningSandbox, start_sandbox, wait_for

pytestmark = pytest.mark.integration

MARKER_ENV = "KUBESANDBOX_PROCESS"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    """A private sandbox: 2 process nodes with 1 (fake) GPU each, 1 s restart back-off."""
    state = tmp_path_factory.mktemp("kubelet")
    with start_sandbox(
        state, "--nodes", "2", "--gpus-per-node", "1", "--restart-backoff", "1"
    ) as running:
        yield running


def phase(sandbox: RunningSandbox, ns: str, pod: str) -> str:
    """A pod's phase."""
    return str(sandbox.get(ns, "pod", pod).get("status", {}).get("phase"))


def pod(name: str, command: list[str], restart: str = "Never") -> str:
    """A one-container pod manifest."""
    return f"""
    apiVersion: v1
    kind: Pod
    metadata: {{name: {name}}}
    spec:
      restartPolicy: {restart}
      containers:
      - name: main
        image: python:3.11
        command: {json.dumps(command)}
    """


def test_a_pod_succeeds_and_kubectl_logs_shows_its_output(sandbox: RunningSandbox, ns: str) -> None:
    sandbox.apply(ns, pod("hello", ["python", "-c", "print('hello from a pod')"]))
    wait_for("hello Succeeded", lambda: phase(sandbox, ns, "hello") == "Succeeded")
    assert sandbox.kubectl("logs", "hello", "-n", ns).stdout == "hello from a pod\n"
    state = sandbox.get(ns, "pod", "hello")["status"]["containerStatuses"][0]["state"]
    assert state["terminated"]["exitCode"] == 0
    assert state["terminated"]["reason"] == "Completed"


def test_a_pod_exiting_3_fails_with_exit_code_3(sandbox: RunningSandbox, ns: str) -> None:
    sandbox.apply(ns, pod("three", ["python", "-c", "raise SystemExit(3)"]))
    wait_for("three Failed", lambda: phase(sandbox, ns, "three") == "Failed")
    state = sandbox.get(ns, "pod", "three")["status"]["containerStatuses"][0]["state"]
    assert state["terminated"]["exitCode"] == 3
    assert state["terminated"]["reason"] == "Error"


def test_on_failure_restarts_with_back_off_and_keeps_the_previous_log(
    sandbox: RunningSandbox, ns: str
) -> None:
    sandbox.apply(ns, pod("crash", ["sh", "-c", "echo run; exit 1"], restart="OnFailure"))
    seen = set()

    def restarted_twice() -> bool:
        status = sandbox.get(ns, "pod", "crash")["status"]["containerStatuses"][0]
        seen.add(status["state"].get("waiting", {}).get("reason"))
        return bool(status["restartCount"] >= 2)

    wait_for("two restarts", restarted_twice)
    assert "CrashLoopBackOff" in seen
    assert phase(sandbox, ns, "crash") == "Running"
    assert sandbox.kubectl("logs", "crash", "-n", ns, "--previous").stdout == "run\n"


def test_a_failing_liveness_probe_restarts_the_container(sandbox: RunningSandbox, ns: str) -> None:
    sandbox.apply(
        ns,
        """
        apiVersion: v1
        kind: Pod
        metadata: {name: unhealthy}
        spec:
          terminationGracePeriodSeconds: 1
          containers:
          - name: main
            image: python:3.11
            command: [sleep, "600"]
            livenessProbe: {exec: {command: ["false"]}, periodSeconds: 1, failureThreshold: 2}
        """,
    )

    def restarts() -> int:
        status = sandbox.get(ns, "pod", "unhealthy")["status"]["containerStatuses"][0]
        return int(status["restartCount"])

    wait_for("a liveness restart", lambda: restarts() >= 1)
    last = sandbox.get(ns, "pod", "unhealthy")["status"]["containerStatuses"][0]["lastState"]
    assert last["terminated"]["exitCode"] == 143  # SIGTERM


def test_a_container_without_command_or_args_fails_with_a_clear_reason(
    sandbox: RunningSandbox, ns: str
) -> None:
    sandbox.apply(
        ns,
        """
        apiVersion: v1
        kind: Pod
        metadata: {name: nocommand}
        spec:
          restartPolicy: Never
          containers: [{name: main, image: busybox}]
        """,
    )
    wait_for("nocommand Failed", lambda: phase(sandbox, ns, "nocommand") == "Failed")
    terminated = sandbox.get(ns, "pod", "nocommand")["status"]["containerStatuses"][0]["state"][
        "terminated"
    ]
    assert terminated["reason"] == "StartError"
    assert "set `command`" in terminated["message"]


def test_env_volumes_init_containers_and_gpus_reach_the_process(
    sandbox: RunningSandbox, ns: str
) -> None:
    report = (
        "import json, os, pathlib; "
        "print(json.dumps({'env': dict(os.environ), 'args': os.sys.argv[1:], "
        "'cwd': os.getcwd(), "
        "'config': pathlib.Path('/config/greeting').read_text(), "
        "'name': pathlib.Path('/info/name').read_text(), "
        "'init': pathlib.Path('/scratch/from-init').read_text()}))"
    )
    sandbox.apply(
        ns,
        f"""
        apiVersion: v1
        kind: ConfigMap
        metadata: {{name: settings}}
        data: {{greeting: hello, LEVEL: debug}}
        ---
        apiVersion: v1
        kind: Pod
        metadata: {{name: envpod, labels: {{app: env}}}}
        spec:
          restartPolicy: Never
          initContainers:
          - name: prepare
            image: busybox
            command: [sh, -c, "echo ready > /scratch/from-init"]
            volumeMounts: [{{name: scratch, mountPath: /scratch}}]
          containers:
          - name: main
            image: python:3.11
            command: [python, -c, {json.dumps(report)}]
            args: ["$(MY_POD)", "/scratch/data"]
            workingDir: /scratch
            env:
            - {{name: MY_POD, valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}}}
            - {{name: MY_IP, valueFrom: {{fieldRef: {{fieldPath: status.podIP}}}}}}
            - {{name: GREETING, valueFrom: {{configMapKeyRef: {{name: settings, key: greeting}}}}}}
            - {{name: COMBINED, value: "$(GREETING)-$(MY_POD)"}}
            envFrom: [{{configMapRef: {{name: settings}}, prefix: CM_}}]
            resources: {{limits: {{nvidia.com/gpu: 1}}}}
            volumeMounts:
            - {{name: scratch, mountPath: /scratch}}
            - {{name: config, mountPath: /config}}
            - {{name: info, mountPath: /info}}
          volumes:
          - {{name: scratch, emptyDir: {{}}}}
          - {{name: config, configMap: {{name: settings}}}}
          - name: info
            downwardAPI: {{items: [{{path: name, fieldRef: {{fieldPath: metadata.name}}}}]}}
        """,
    )
    wait_for("envpod Succeeded", lambda: phase(sandbox, ns, "envpod") == "Succeeded")
    out = json.loads(sandbox.kubectl("logs", "envpod", "-n", ns, "-c", "main").stdout)
    env = out["env"]
    status = sandbox.get(ns, "pod", "envpod")["status"]
    assert env["MY_IP"] == status["podIP"]
    assert status["podIP"].startswith("127.")
    assert env["COMBINED"] == "hello-envpod"
    assert env["CM_LEVEL"] == "debug"
    assert env["CUDA_VISIBLE_DEVICES"] == "0"
    scratch = env["KUBESANDBOX_MOUNT_SCRATCH"]
    assert out["args"] == ["envpod", f"{scratch}/data"]
    assert out["cwd"] == scratch
    assert (out["config"], out["name"], out["init"]) == ("hello", "envpod", "ready\n")
    assert status["initContainerStatuses"][0]["state"]["terminated"]["exitCode"] == 0


def test_a_pod_asking_for_more_gpus_than_any_node_has_stays_pending(
    sandbox: RunningSandbox, ns: str
) -> None:
    sandbox.apply(
        ns,
        """
        apiVersion: v1
        kind: Pod
        metadata: {name: greedy}
        spec:
          containers:
          - {name: main, image: x, command: [python], resources: {limits: {nvidia.com/gpu: 4}}}
        """,
    )

    def scheduled_condition() -> Any:
        conditions = sandbox.get(ns, "pod", "greedy").get("status", {}).get("conditions", [])
        return next((c for c in conditions if c["type"] == "PodScheduled"), None)

    condition = wait_for("a PodScheduled condition", scheduled_condition)
    assert condition["status"] == "False"
    assert condition["reason"] == "Unschedulable"
    assert condition["message"] == "0/2 nodes are available: 2 Insufficient nvidia.com/gpu."
    assert phase(sandbox, ns, "greedy") == "Pending"


def test_graceful_deletion_sends_sigterm_then_removes_the_pod(
    sandbox: RunningSandbox, ns: str, tmp_path: Path
) -> None:
    program = (
        "import pathlib, signal, sys, time\n"
        "def stop(*_):\n"
        "    pathlib.Path('/out/term').write_text('got SIGTERM')\n"
        "    sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        "print('up', flush=True)\n"
        "time.sleep(600)\n"
    )
    sandbox.apply(
        ns,
        f"""
        apiVersion: v1
        kind: Pod
        metadata: {{name: sleeper}}
        spec:
          containers:
          - name: main
            image: python:3.11
            command: [python, -c, {json.dumps(program)}]
            volumeMounts: [{{name: out, mountPath: /out}}]
          volumes: [{{name: out, hostPath: {{path: {tmp_path}}}}}]
        """,
    )
    wait_for(
        "sleeper up", lambda: sandbox.kubectl("logs", "sleeper", "-n", ns).stdout.startswith("up")
    )
    log = sandbox.state_dir / "logs" / ns / "sleeper" / "main.log"
    sandbox.kubectl("delete", "pod", "sleeper", "-n", ns, "--timeout=30s")
    gone = sandbox.kubectl("get", "pod", "sleeper", "-n", ns, check=False)
    assert "NotFound" in gone.stderr
    assert (tmp_path / "term").read_text() == "got SIGTERM"
    assert not log.exists()  # logs go with the pod


TORCHRUN_SCRIPT = """\
import os, torch, torch.distributed as dist
dist.init_process_group("gloo")
t = torch.ones(1) * (dist.get_rank() + 1)
dist.all_reduce(t)
# one write(2) per line: the ranks of a node share one log, a line must not interleave
os.write(1, f"rank {dist.get_rank()} of {dist.get_world_size()} sum {int(t.item())}\\n".encode())
dist.destroy_process_group()
"""


def torchrun_job(job: str) -> str:
    """A headless service and two pods running a 2-node x 2-process torchrun on gloo."""
    pods = "".join(
        f"""
        ---
        apiVersion: v1
        kind: Pod
        metadata: {{name: {job}-node-{rank}, labels: {{job: {job}}}}}
        spec:
          hostname: {job}-node-{rank}
          subdomain: {job}
          restartPolicy: Never
          containers:
          - name: trainer
            image: trainer
            command: [python, -m, torch.distributed.run]
            args: [--nnodes=2, --nproc-per-node=2, "--node-rank=$(RANK)", --rdzv-backend=c10d,
                   "--rdzv-endpoint={job}-node-0.{job}:29500", /scripts/ddp.py]
            env: [{{name: RANK, value: "{rank}"}}, {{name: PYTHONWARNINGS, value: ignore}}]
            volumeMounts: [{{name: scripts, mountPath: /scripts}}]
          volumes: [{{name: scripts, configMap: {{name: {job}-script}}}}]
        """
        for rank in (0, 1)
    )
    script = textwrap.indent(TORCHRUN_SCRIPT, " " * 12)
    return f"""
        apiVersion: v1
        kind: ConfigMap
        metadata: {{name: {job}-script}}
        data:
          ddp.py: |
{script}
        ---
        apiVersion: v1
        kind: Service
        metadata: {{name: {job}}}
        spec: {{clusterIP: None, selector: {{job: {job}}}}}
        {pods}
    """


def test_two_torchrun_jobs_on_the_same_port_rendezvous_by_dns_and_complete(
    sandbox: RunningSandbox, ns: str
) -> None:
    for job in ("alpha", "beta"):
        sandbox.apply(ns, torchrun_job(job))
    names = [f"{job}-node-{rank}" for job in ("alpha", "beta") for rank in (0, 1)]
    wait_for(
        "both jobs to finish",
        lambda: all(phase(sandbox, ns, n) in ("Succeeded", "Failed") for n in names),
        timeout=240,
    )
    for name in names:
        log = sandbox.kubectl("logs", name, "-n", ns).stdout
        assert phase(sandbox, ns, name) == "Succeeded", log
        assert "of 4 sum 10" in log


def marked(pod_uid: str) -> list[int]:
    """Processes whose sandbox marker (`<sandbox>/<pod uid>/<container>`) names the pod."""
    needle = f"/{pod_uid}/".encode()
    found = []
    for entry in Path("/proc").iterdir():
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        prefix = f"{MARKER_ENV}=".encode()
        if any(v.startswith(prefix) and needle in v for v in environ.split(b"\0")):
            found.append(int(entry.name))
    return found


def test_stopping_the_sandbox_leaves_no_process(tmp_path: Path) -> None:
    # a child in its own session, as torchrun's workers are, must not escape either
    program = (
        "import subprocess, time\n"
        "subprocess.Popen(['sleep', '600'], start_new_session=True)\n"
        "print('started', flush=True)\n"
        "time.sleep(600)\n"
    )
    with start_sandbox(tmp_path, "--nodes", "1") as running:
        running.kubectl("create", "namespace", "stop")
        running.apply("stop", pod("sleeper", ["python", "-c", program]))
        wait_for(
            "sleeper started",
            lambda: "started" in running.kubectl("logs", "sleeper", "-n", "stop").stdout,
        )
        uid = running.get("stop", "pod", "sleeper")["metadata"]["uid"]
        assert len(marked(uid)) == 2  # python and its sleep in another session
    assert marked(uid) == []
