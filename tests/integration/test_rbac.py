"""The chart's RBAC against what the operator really does: the chart-installed operator runs
a job lifecycle in the sandbox (create, run, succeed and be deleted after its TTL; a gang
restart; a deletion by the user), and the API server's request log must show that every
request it made is allowed by the installed roles, in the namespace it was made in, and that
every grant was used, or is listed below with the code path the sandbox cannot reach."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest

from kubesandbox.apiserver.http import requestlog
from kubesandbox.testing import RunningSandbox, start_sandbox, wait_for
from support.chart_install import apply_job, install_operator
from support.helmchart import NAMESPACE, RELEASE, Grant, grants, render, rule_grants
from support.rbac import ALLOWED

pytestmark = pytest.mark.integration

WORK = "work"
SERVICE_ACCOUNT = {"kind": "ServiceAccount", "name": f"{RELEASE}-bigmodel-operator"}
EXIT_CODE = "kubesandbox.dev/exit-code"
SIMULATED = {
    "image": "sim",
    "command": ["python", "-c", "pass"],
    "nodes": 2,
    "nodeSelector": {"type": "simulated"},
}
FAST_RESTARTS = [{"name": "BIGMODEL_RESTART_BACKOFF", "value": "0.2"}]
SIMULATED_SERVICE = {
    "apiVersion": "bigmodel.dev/v1alpha1",
    "kind": "BigModelService",
    "metadata": {"name": "web"},
    "spec": {
        "runtime": "custom",
        "image": "sim",
        "command": ["python", "-c", "pass"],
        "replicas": 1,
        "nodeSelector": {"type": "simulated"},
        "tolerations": [{"key": "kubesandbox.dev/simulated", "operator": "Exists"}],
    },
}
MODES = {"cluster-wide": {}, "namespaced": {"watch": {"namespaces": [WORK]}}}

# Granted but not used in this test, each for a reason: the code path needs what the sandbox
# does not have. Everything else the chart grants, the operator must use here.
UNREACHED = {
    # JobReconciler._create: a PodGroup per gang-scheduled job, only where the cluster serves
    # the scheduler's PodGroup API (the sandbox serves neither).
    Grant("scheduling.volcano.sh", "podgroups", "create"): "Volcano gang scheduling",
    Grant("scheduling.x-k8s.io", "podgroups", "create"): "coscheduling gang scheduling",
    # controller/legacy.py: removing the finalizer and annotations that versions with a kopf
    # daemon per object left; this test's objects are all created by this version.
    Grant("bigmodel.dev", "bigmodeljobs", "patch"): "earlier versions' finalizer",
    Grant("bigmodel.dev", "bigmodelservices", "patch"): "earlier versions' finalizer",
}
TEST_CLIENTS = ("kubectl/", "Helm/")
"""User agents of this test's own requests; the operator pod is the only other client (the
sandbox's controllers and kubelets do not go through HTTP)."""


def installed_rbac(sandbox: RunningSandbox) -> list[dict[str, Any]]:
    """The release's roles and bindings as installed (all namespaces)."""
    kinds = "clusterroles,clusterrolebindings,roles,rolebindings"
    selector = f"app.kubernetes.io/instance={RELEASE}"
    listed = sandbox.kubectl("get", kinds, "-A", "-l", selector, "-o", "json").stdout
    items: list[dict[str, Any]] = json.loads(listed)["items"]
    return items


def _rule_allows(rule: Mapping[str, Any], group: str, resource: str, verb: str) -> bool:
    def has(key: str, value: str) -> bool:
        values = rule.get(key) or ()
        return value in values or "*" in values

    return has("apiGroups", group) and has("resources", resource) and has("verbs", verb)


def authorized(rbac: Sequence[Mapping[str, Any]], entry: Mapping[str, Any]) -> bool:
    """Whether the operator's ServiceAccount may make this request, as the RBAC authorizer
    decides: a ClusterRoleBinding grants everywhere, a RoleBinding only in its namespace."""
    group, verb, namespace = entry["apiGroup"] or "", entry["verb"], entry["namespace"]
    resource = entry["resource"] + (f"/{entry['subresource']}" if entry["subresource"] else "")
    roles = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o for o in rbac}
    subject = {**SERVICE_ACCOUNT, "namespace": NAMESPACE}
    for binding in rbac:
        if not binding["kind"].endswith("Binding") or subject not in binding["subjects"]:
            continue
        bound_in = binding["metadata"].get("namespace")  # None for a ClusterRoleBinding
        if bound_in is not None and bound_in != namespace:
            continue
        ref = binding["roleRef"]
        role = roles.get((ref["kind"], bound_in if ref["kind"] == "Role" else None, ref["name"]))
        rules = (role or {}).get("rules") or ()
        if any(_rule_allows(rule, group, resource, verb) for rule in rules):
            return True
    return False


def run_lifecycle(sandbox: RunningSandbox) -> None:
    """Jobs through the paths the operator has: success then deletion by TTL; a node that
    fails, so the gang restarts; a job the user deletes. A service
    through its own: created, Ready, scaled by hand, deleted."""

    def kubectl(*args: str) -> str:
        return str(sandbox.kubectl("-n", WORK, *args).stdout)

    def job(name: str, run_policy: dict[str, Any]) -> dict[str, Any]:
        spec = {**SIMULATED, "runPolicy": run_policy}
        return {"apiVersion": "bigmodel.dev/v1alpha1", "kind": "BigModelJob",
                "metadata": {"name": name}, "spec": spec}  # fmt: skip

    def running(job: str) -> set[str]:
        pods = sandbox.get(WORK, "pods", "-l", f"bigmodel.dev/job={job}")["items"]
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        up = [p for p in live if p["status"].get("phase") == "Running"]
        return {p["metadata"]["uid"] for p in up} if len(up) == 2 else set()

    apply_job(sandbox, WORK, job("done", {"ttlSecondsAfterFinished": 1}))
    apply_job(sandbox, WORK, job("again", {"backoffLimit": 2}))
    wait_for("done's 2 pods Running", lambda: running("done"))
    first = wait_for("again's 2 pods Running", lambda: running("again"))
    kubectl("annotate", "pod", "done-node-0", "done-node-1", f"{EXIT_CODE}=0")
    kubectl("annotate", "pod", "again-node-1", f"{EXIT_CODE}=1")
    wait_for("the gang restart", lambda: (now := running("again")) and not now & first)
    wait_for("done's TTL", lambda: "done" not in kubectl("get", "bmj", "-o", "name"))
    kubectl("delete", "bmj", "again", "--timeout=60s")

    def service_phase() -> tuple[str, int]:
        status = sandbox.get(WORK, "bms", "web").get("status") or {}
        return status.get("phase", ""), status.get("readyReplicas", 0)

    sandbox.kubectl("apply", "-n", WORK, "-f", "-", input=json.dumps(SIMULATED_SERVICE))
    wait_for("web Ready", lambda: service_phase() == ("Ready", 1))
    kubectl("scale", "bms", "web", "--replicas=2")
    wait_for("web Ready with 2", lambda: service_phase() == ("Ready", 2))
    kubectl("delete", "bms", "web", "--timeout=60s")


@pytest.fixture(scope="module", params=sorted(MODES))
def mode(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory, mode: str) -> Iterator[RunningSandbox]:
    """A private sandbox with the chart installed in `mode`, after the job lifecycle."""
    state_dir = tmp_path_factory.mktemp(f"rbac-{mode}")
    with start_sandbox(state_dir, "--simulated-nodes", "2") as running:
        running.kubectl("create", "namespace", WORK)  # before install: a Role goes in it
        # One replica: the operator pod's requests are then the leader's, all of them.
        values = {**MODES[mode], "extraEnv": FAST_RESTARTS, "replicaCount": 1}
        install_operator(running, *(f"--set-json={k}={json.dumps(v)}" for k, v in values.items()))
        run_lifecycle(running)
        yield running


def operator_requests(sandbox: RunningSandbox) -> list[dict[str, Any]]:
    """The request log's entries of the operator pod (kopf's and the job controller's)."""
    entries = requestlog.read(sandbox.state_dir / requestlog.FILENAME)
    mine = [e for e in entries if not str(e["userAgent"]).startswith(TEST_CLIENTS)]
    assert {e["userAgent"].split("/")[0] for e in mine} >= {"kopf"}
    return mine


def test_every_request_of_the_operator_is_allowed_where_it_was_made(
    sandbox: RunningSandbox,
) -> None:
    rbac = installed_rbac(sandbox)
    denied = {
        (e["verb"], e["path"].split("?")[0])
        for e in operator_requests(sandbox)
        if e["resource"] and not authorized(rbac, e)
    }
    assert denied == set()


def test_every_grant_is_used_or_needs_what_the_sandbox_lacks(
    sandbox: RunningSandbox, mode: str
) -> None:
    used = requestlog.permissions(operator_requests(sandbox))
    installed = set()
    for role in installed_rbac(sandbox):
        if role["kind"] in ("ClusterRole", "Role"):
            installed |= rule_grants(role.get("rules") or ())
    assert installed == grants(render(MODES[mode]))  # what the chart renders is installed
    assert {Grant(*p) for p in used} <= installed
    assert installed - {Grant(*p) for p in used} == set(UNREACHED)
    assert installed <= ALLOWED
