"""The Helm chart installed with the real `helm` into the sandbox: its Deployment's two pods
run the chart's command (`bigmodel run ...`) as processes of the sandbox's kubelet, reach the
API from inside the pod, train the CPU example to Succeeded, and `helm uninstall` removes
the operator while CRDs, jobs and their pods stay."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator

import pytest

from kubesandbox.apiserver.http import requestlog
from kubesandbox.testing import RunningSandbox, start_sandbox, wait_for
from support.chart_install import (
    FULLNAME,
    INSTANCE,
    NAMESPACE,
    apply_job,
    install_operator,
    job_phase,
    operator_pods,
)
from support.examples import example as load_example
from support.helmchart import RELEASE

pytestmark = pytest.mark.integration

# Released operator objects, by kind, as `kubectl get` names them.
OPERATOR_KINDS = "deployments,replicasets,pods,services,serviceaccounts,roles,rolebindings"
CLUSTER_KINDS = "clusterroles,clusterrolebindings"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    """A private sandbox with the default process nodes (what `kubesandbox up` gives a new
    user: the example's 2 node pods need 1 CPU each, the operator 0.1) and 1 simulated node
    (pods that run until told to finish)."""
    state_dir = tmp_path_factory.mktemp("chart-install")
    with start_sandbox(state_dir, "--simulated-nodes", "1") as running:
        yield running


@pytest.fixture(scope="module")
def installed(sandbox: RunningSandbox) -> RunningSandbox:
    """The chart installed with its defaults (two replicas, all namespaces watched)."""
    install_operator(sandbox)
    return sandbox


def test_both_operator_pods_run_the_charts_command_and_reach_the_api(
    installed: RunningSandbox,
) -> None:
    pods = operator_pods(installed)
    assert len(pods) == 2
    for pod in pods:
        container = pod["spec"]["containers"][0]
        assert container["command"] == ["bigmodel"]
        assert container["args"][:1] == ["run"]
        [state] = pod["status"]["containerStatuses"]
        assert state["ready"] and "running" in state["state"] and state["restartCount"] == 0
        log = installed.kubectl("logs", "-n", NAMESPACE, pod["metadata"]["name"]).stdout
        assert "starting: all namespaces" in log
        assert "Activity 'login' succeeded" in log
    # The pod's own requests: kopf's watches, from inside the pod, in the API's log.
    entries = requestlog.read(installed.state_dir / requestlog.FILENAME)
    kopf = requestlog.permissions(entries, user_agent="kopf/")
    assert ("bigmodel.dev", "bigmodeljobs", "watch") in kopf


def test_the_disruption_budget_and_the_lease_role_are_installed(
    installed: RunningSandbox,
) -> None:
    budget = installed.get(NAMESPACE, "poddisruptionbudget", FULLNAME)
    assert budget["spec"]["minAvailable"] == 1
    role = installed.get(NAMESPACE, "role", f"{FULLNAME}-leader-election")
    assert {r for rule in role["rules"] for r in rule["resources"]} == {"leases"}


def test_the_metrics_service_and_the_health_port_answer(installed: RunningSandbox) -> None:
    service = installed.get(NAMESPACE, "service", f"{FULLNAME}-metrics")
    port = service["spec"]["ports"][0]["port"]
    url = f"http://{service['spec']['clusterIP']}:{port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        assert "# TYPE" in response.read().decode()
    for pod in operator_pods(installed):
        for path in ("healthz", "readyz"):
            health = f"http://{pod['status']['podIP']}:8081/{path}"
            with urllib.request.urlopen(health, timeout=10) as response:
                assert response.status == 200
                assert json.load(response)["status"] == "ok"


def test_the_cpu_example_trains_to_success_under_the_installed_operator(
    installed: RunningSandbox,
) -> None:
    installed.kubectl("create", "namespace", "demo")
    example = load_example("cpu-job.yaml", "BigModelJob")
    apply_job(installed, "demo", example)
    name = example["metadata"]["name"]
    wait_for(
        f"{name} to finish",
        lambda: job_phase(installed, "demo", name) in ("Succeeded", "Failed"),
        timeout=240,
    )
    status = installed.get("demo", "bigmodeljob", name)["status"]
    assert status["phase"] == "Succeeded", status
    assert status["restarts"] == 0
    # one node pod per default node, as on a cluster of two nodes
    pods = installed.get("demo", "pods")["items"]
    assert sorted(p["spec"]["nodeName"] for p in pods) == ["sandbox-node-0", "sandbox-node-1"]


def test_uninstall_removes_the_operator_and_leaves_crds_jobs_and_their_pods(
    installed: RunningSandbox,
) -> None:
    installed.kubectl("create", "namespace", "keep")
    job = {
        "apiVersion": "bigmodel.dev/v1alpha1",
        "kind": "BigModelJob",
        "metadata": {"name": "kept"},
        "spec": {
            "image": "sim",
            "command": ["python", "-c", "pass"],
            "nodes": 1,
            "nodeSelector": {"type": "simulated"},  # runs until the test says otherwise
        },
    }
    apply_job(installed, "keep", job)
    wait_for("kept Running", lambda: job_phase(installed, "keep", "kept") == "Running")

    installed.helm("uninstall", RELEASE, "--namespace", NAMESPACE, "--wait", "--timeout", "60s")

    def operator_gone() -> bool:
        left = installed.get(NAMESPACE, OPERATOR_KINDS, "-l", INSTANCE)["items"]
        cluster = installed.kubectl("get", CLUSTER_KINDS, "-l", INSTANCE, "-o", "name").stdout
        return not left and not cluster.strip()

    wait_for("the release's objects to be deleted", operator_gone)
    # Helm never deletes the CRDs of crds/: deleting them would delete every job.
    crds = installed.kubectl("get", "crds", "-o", "name").stdout.split()
    for kind in ("bigmodeljobs", "bigmodelservices"):
        assert f"customresourcedefinition.apiextensions.k8s.io/{kind}.bigmodel.dev" in crds
    # Jobs are the users' objects, not the release's: they stay, with their pods, and carry
    # no finalizer: deleting one needs no operator (owner references take its pods).
    kept = installed.get("keep", "bigmodeljob", "kept")
    assert kept["status"]["phase"] == "Running"
    assert not kept["metadata"].get("finalizers")
    pods = installed.get("keep", "pods")["items"]
    assert [p["metadata"]["name"] for p in pods] == ["kept-node-0"]
    finished = installed.get("demo", "bigmodeljobs")["items"]
    assert [j["status"]["phase"] for j in finished] in ([], ["Succeeded"])  # run alone: []
    namespace = json.loads(installed.kubectl("get", "namespace", NAMESPACE, "-o", "json").stdout)
    assert namespace["status"]["phase"] == "Active"  # helm never deletes a namespace
