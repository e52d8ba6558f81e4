"""Jobs, DaemonSets, ReplicationControllers and APIServices through the official Python
client and the real kubectl, as the client's own end-to-end suite and Helm charts use them:
create, read, list, watch, delete; Jobs run their pods to completion (or fail), DaemonSets
land a pod on each node; the suite's busybox pod (args, no command) runs and answers exec."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream

from kubesandbox.testing import RunningSandbox, start_sandbox, wait_for

pytestmark = pytest.mark.integration

BUSYBOX = {"name": "work", "image": "busybox"}


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    """A private sandbox: 2 process nodes, 1 simulated node, a 1 s first replacement delay."""
    options = ("--nodes", "2", "--simulated-nodes", "1", "--restart-backoff", "1")
    with start_sandbox(tmp_path_factory.mktemp("batch"), *options) as running:
        yield running


def job(name: str, script: str, restart: str = "Never", **spec: Any) -> dict[str, Any]:
    container = {**BUSYBOX, "args": ["/bin/sh", "-c", script]}
    template = {"spec": {"restartPolicy": restart, "containers": [container]}}
    return {"metadata": {"name": name}, "spec": {"template": template, **spec}}


def condition_types(batch: client.BatchV1Api, ns: str, name: str) -> list[str]:
    conditions = batch.read_namespaced_job_status(name, ns).status.conditions or []
    return [c.type for c in conditions if c.status == "True"]


def test_a_job_runs_its_pods_to_completion_and_reports_complete(
    sandbox: RunningSandbox, api: client.ApiClient, ns: str
) -> None:
    batch = client.BatchV1Api(api)
    created = batch.create_namespaced_job(
        ns, job("count", "echo done", completions=3, parallelism=2)
    )
    assert created.spec.backoff_limit == 6
    selector = created.spec.selector.match_labels
    wait_for("Complete", lambda: "Complete" in condition_types(batch, ns, "count"), timeout=90)
    done = batch.read_namespaced_job("count", ns)
    assert done.status.succeeded == 3 and not done.status.active
    assert condition_types(batch, ns, "count") == ["SuccessCriteriaMet", "Complete"]
    assert done.status.completion_time >= done.status.start_time
    pods = client.CoreV1Api(api).list_namespaced_pod(ns, label_selector="job-name=count").items
    assert [p.status.phase for p in pods] == ["Succeeded"] * 3
    assert all(selector.items() <= p.metadata.labels.items() for p in pods)
    assert sandbox.kubectl("logs", "-n", ns, pods[0].metadata.name).stdout == "done\n"
    waited = sandbox.kubectl("wait", "-n", ns, "--for=condition=complete", "job/count")
    assert "condition met" in waited.stdout
    row = sandbox.kubectl("get", "jobs", "-n", ns, "--no-headers").stdout.split()
    assert row[:3] == ["count", "Complete", "3/3"]
    assert [j.metadata.name for j in batch.list_namespaced_job(ns).items] == ["count"]


def test_an_indexed_job_gives_each_pod_its_completion_index(
    sandbox: RunningSandbox, api: client.ApiClient, ns: str
) -> None:
    batch = client.BatchV1Api(api)
    script = 'echo "$JOB_COMPLETION_INDEX $(hostname)"'
    spec = {"completions": 3, "parallelism": 3, "completionMode": "Indexed"}
    batch.create_namespaced_job(ns, job("ranks", script, **spec))
    wait_for("Complete", lambda: "Complete" in condition_types(batch, ns, "ranks"), timeout=90)
    assert batch.read_namespaced_job_status("ranks", ns).status.completed_indexes == "0-2"
    logs = sandbox.kubectl("logs", "-n", ns, "-l", "job-name=ranks").stdout.split("\n")
    assert sorted(logs[:-1]) == [f"{i} ranks-{i}" for i in range(3)]


def test_a_job_whose_pod_fails_backoff_limit_plus_one_times_is_failed(
    api: client.ApiClient, ns: str
) -> None:
    batch = client.BatchV1Api(api)
    batch.create_namespaced_job(ns, job("fails", "exit 3", backoffLimit=1))
    wait_for("Failed", lambda: "Failed" in condition_types(batch, ns, "fails"), timeout=90)
    status = batch.read_namespaced_job_status("fails", ns).status
    assert status.failed == 2 and not status.succeeded
    failed = next(c for c in status.conditions if c.type == "Failed")
    assert failed.reason == "BackoffLimitExceeded"
    assert failed.message == "Job has reached the specified backoff limit"
    pods = client.CoreV1Api(api).list_namespaced_pod(ns).items
    assert sorted(p.status.phase for p in pods) == ["Failed", "Failed"]


def test_a_finished_job_is_deleted_after_its_ttl_with_its_pods(
    api: client.ApiClient, ns: str
) -> None:
    batch = client.BatchV1Api(api)
    batch.create_namespaced_job(ns, job("brief", "true", ttlSecondsAfterFinished=1))
    wait_for("job gone", lambda: not batch.list_namespaced_job(ns).items, timeout=90)
    core = client.CoreV1Api(api)
    wait_for("pods gone", lambda: not core.list_namespaced_pod(ns).items)


def test_jobs_are_watched_and_deleted_with_their_pods(api: client.ApiClient, ns: str) -> None:
    batch = client.BatchV1Api(api)
    start = batch.list_namespaced_job(ns).metadata.resource_version
    batch.create_namespaced_job(ns, job("slow", "sleep 600"))
    core = client.CoreV1Api(api)
    wait_for("a running pod", lambda: _phases(core, ns) == ["Running"], timeout=60)
    seen = []
    for event in watch.Watch().stream(
        batch.list_namespaced_job, ns, resource_version=start, timeout_seconds=5
    ):
        seen.append((event["type"], event["object"].status.active))
        if event["object"].status.active == 1:
            break
    assert seen[0] == ("ADDED", None) and seen[-1] == ("MODIFIED", 1)
    options = client.V1DeleteOptions(propagation_policy="Background")
    batch.delete_namespaced_job("slow", ns, body=options)
    wait_for("pods gone", lambda: not core.list_namespaced_pod(ns).items, timeout=60)


def _phases(core: client.CoreV1Api, ns: str) -> list[str]:
    return [p.status.phase for p in core.list_namespaced_pod(ns).items]


def test_an_invalid_job_is_refused_naming_the_field(api: client.ApiClient, ns: str) -> None:
    with pytest.raises(ApiException) as refused:
        client.BatchV1Api(api).create_namespaced_job(ns, job("bad", "true", restart="Always"))
    assert refused.value.status == 422
    message = json.loads(refused.value.body)["message"]
    assert 'spec.template.spec.restartPolicy: Unsupported value: "Always"' in message


DAEMON = """
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      TOLERATIONS
      containers:
      - name: agent
        image: busybox
        args: [/bin/sh, -c, 'echo "VERSION on $NODE"; exec sleep 600']
        env:
        - {name: NODE, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}
"""


def _nodes_of(sandbox: RunningSandbox, ns: str) -> list[str]:
    pods = sandbox.get(ns, "pods", "-l", "app=agent")["items"]
    return sorted(p["spec"].get("nodeName", "") for p in pods if p["status"]["phase"] == "Running")


def _rollout(sandbox: RunningSandbox, ns: str) -> None:
    done = sandbox.kubectl("rollout", "status", "ds/agent", "-n", ns, "--timeout=90s")
    assert "successfully rolled out" in done.stdout


def test_a_daemon_set_runs_one_pod_on_each_process_node(
    sandbox: RunningSandbox, api: client.ApiClient, ns: str
) -> None:
    sandbox.apply(ns, DAEMON.replace("TOLERATIONS", "tolerations: []").replace("VERSION", "one"))
    _rollout(sandbox, ns)
    assert _nodes_of(sandbox, ns) == ["sandbox-node-0", "sandbox-node-1"]
    apps = client.AppsV1Api(api)
    status = apps.read_namespaced_daemon_set("agent", ns).status
    assert (status.desired_number_scheduled, status.number_ready) == (2, 2)
    row = sandbox.kubectl("get", "ds", "agent", "-n", ns, "--no-headers").stdout.split()
    assert row[:6] == ["agent", "2", "2", "2", "2", "2"]

    sandbox.apply(ns, DAEMON.replace("TOLERATIONS", "tolerations: []").replace("VERSION", "two"))
    _rollout(sandbox, ns)
    expected = [f"two on sandbox-node-{i}" for i in (0, 1)]

    def logged() -> list[str]:
        return sorted(sandbox.kubectl("logs", "-n", ns, "-l", "app=agent").stdout.splitlines())

    # The rollout is done once the new pods are ready; an old pod may still be terminating
    # (and listed by the selector) for a moment after.
    wait_for(
        "only version two's pods logging", lambda: logged() == expected, 60, lambda: str(logged())
    )

    apps.delete_namespaced_daemon_set("agent", ns)
    wait_for("pods gone", lambda: not sandbox.get(ns, "pods")["items"], timeout=60)


def test_a_daemon_set_tolerating_the_simulated_taint_lands_on_every_node(
    sandbox: RunningSandbox, ns: str
) -> None:
    tolerating = DAEMON.replace("TOLERATIONS", "tolerations: [{operator: Exists}]")
    sandbox.apply(ns, tolerating.replace("VERSION", "one"))
    _rollout(sandbox, ns)
    assert _nodes_of(sandbox, ns) == ["sandbox-node-0", "sandbox-node-1", "sandbox-sim-0"]


def test_an_args_only_busybox_pod_runs_and_answers_exec(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    script = "while true; do date; sleep 5; done"
    pod = {"metadata": {"name": "busybox-test"},
           "spec": {"containers": [{**BUSYBOX, "args": ["/bin/sh", "-c", script]}]}}  # fmt: skip
    core.create_namespaced_pod(ns, pod)
    wait_for("Running", lambda: _phases(core, ns) == ["Running"], timeout=60)
    command = ["/bin/sh", "-c", "echo This message goes to stderr >&2; echo to stdout"]
    answer = stream(
        core.connect_get_namespaced_pod_exec, "busybox-test", ns, command=command,
        stderr=True, stdin=False, stdout=True, tty=False,
    )  # fmt: skip
    assert "to stdout" in answer


def test_replication_controllers_are_stored_and_served_without_pods(
    sandbox: RunningSandbox, api: client.ApiClient, ns: str
) -> None:
    core = client.CoreV1Api(api)
    template = {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{**BUSYBOX, "args": ["sleep", "600"]}]}}  # fmt: skip
    body = {"metadata": {"name": "web"},
            "spec": {"replicas": 2, "selector": {"app": "web"}, "template": template}}  # fmt: skip
    created = core.create_namespaced_replication_controller(ns, body)
    assert created.metadata.generation == 1
    assert core.read_namespaced_replication_controller("web", ns).spec.replicas == 2
    listed = core.list_namespaced_replication_controller(ns).items
    assert [rc.metadata.name for rc in listed] == ["web"]
    assert sandbox.kubectl("get", "rc", "-n", ns, "--no-headers").stdout.split()[:3] == [
        "web",
        "2",
        "0",
    ]
    assert core.list_namespaced_pod(ns).items == []  # no controller behind it
    core.delete_namespaced_replication_controller("web", ns)
    assert core.list_namespaced_replication_controller(ns).items == []


def test_api_services_are_stored_and_served(sandbox: RunningSandbox, api: client.ApiClient) -> None:
    registration = client.ApiregistrationV1Api(api)
    body = {
        "metadata": {"name": "v1alpha1.wardle.example.com"},
        "spec": {"group": "wardle.example.com", "version": "v1alpha1",
                 "groupPriorityMinimum": 1000, "versionPriority": 15,
                 "service": {"namespace": "default", "name": "api"}},
    }  # fmt: skip
    registration.create_api_service(body)
    try:
        read = registration.read_api_service("v1alpha1.wardle.example.com")
        assert read.spec.service.name == "api"
        names = [s.metadata.name for s in registration.list_api_service().items]
        assert "v1alpha1.wardle.example.com" in names
        row = sandbox.kubectl("get", "apiservices", "--no-headers").stdout.split()
        assert row[:3] == ["v1alpha1.wardle.example.com", "default/api", "Unknown"]
    finally:
        registration.delete_api_service("v1alpha1.wardle.example.com")
    missing = sandbox.kubectl("get", "apiservice", "v1alpha1.wardle.example.com", check=False)
    assert isinstance(missing, subprocess.CompletedProcess) and missing.returncode != 0


HOOKED_CHART = {
    "Chart.yaml": "apiVersion: v2\nname: hooked\nversion: 0.1.0\n",
    "templates/migrate.yaml": """
apiVersion: batch/v1
kind: Job
metadata:
  name: migrate
  annotations: {"helm.sh/hook": pre-install, "helm.sh/hook-delete-policy": hook-succeeded}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: migrate, image: busybox, args: [/bin/sh, -c, "echo migrated"]}]
""",
    "templates/agent.yaml": DAEMON.replace("TOLERATIONS", "tolerations: []"),
}


def test_helm_installs_a_chart_with_a_hook_job_and_a_daemon_set(
    sandbox: RunningSandbox, ns: str, tmp_path: Path
) -> None:
    for name, text in HOOKED_CHART.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    sandbox.helm("install", "hooked", str(tmp_path), "-n", ns, "--wait", "--timeout", "90s")
    assert sandbox.get(ns, "jobs")["items"] == []  # it succeeded: hook-succeeded deleted it
    assert sandbox.get(ns, "ds", "agent")["status"]["numberReady"] == 2
