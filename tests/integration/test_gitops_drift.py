"""GitOps against the running operator: the manifests of examples/gitops, rendered by the
real `kubectl kustomize` and applied as Argo CD and Flux apply them (client-side or
server-side), show no diff and change nothing when applied again after the operator has
written their status and created their labelled children; their status reads healthy to
kstatus and to the Argo CD health checks.

The overlay each test renders keeps the examples as they are except where they run: the test
namespace, and pods on the sandbox's simulated nodes (no training, no model server). It also
marks the resources as the GitOps tools do, to see that the marks stay off the children."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubesandbox.testing import wait_for
from support.argocd import health, script_path
from support.harness import REPO, Cluster, Operator
from support.kstatus import verdict

pytestmark = pytest.mark.integration

WORKLOADS = REPO / "examples" / "gitops" / "workloads"
TRACKING = {
    "labels": {"kustomize.toolkit.fluxcd.io/name": "ml-team"},
    "annotations": {"argocd.argoproj.io/tracking-id": "ml-team:bigmodel.dev/BigModel:ml-team/x"},
}
"""Marks Flux and Argo CD put on what they apply."""
APPLIED = ("bmj/finetune", "bms/chat")
CHILDREN = sorted(["Pod", "Pod", "Service", "Deployment", "Pod", "Service"])
"""The job's two node pods and headless Service, the service's Deployment, replica and Service."""
APPLY_MODES = {"client-side": [], "server-side": ["--server-side"]}


def overlay(tmp_path: Path, namespace: str) -> str:
    """A kustomization of the examples for this sandbox namespace."""
    simulated = [
        {"op": "add", "path": "/spec/nodeSelector", "value": {"type": "simulated"}},
        {"op": "add", "path": "/spec/tolerations",
         "value": [{"key": "kubesandbox.dev/simulated", "operator": "Exists"}]},
    ]  # fmt: skip
    namespace_object = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ml-team"}}
    kustomization = {
        "resources": [os.path.relpath(WORKLOADS, tmp_path)],
        "namespace": namespace,
        "labels": [{"pairs": TRACKING["labels"]}],
        "commonAnnotations": TRACKING["annotations"],
        "patches": [
            {"patch": yaml.safe_dump({"$patch": "delete", **namespace_object})},
            {"target": {"group": "bigmodel.dev"}, "patch": yaml.safe_dump(simulated)},
        ],
    }
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    return str(tmp_path)


def acted_on(cluster: Cluster) -> dict[str, Any] | None:
    """The job and the service once the operator has reported them Ready, with their
    children created; None before."""
    objects = {name: json.loads(cluster.kubectl("get", name, "-o", "json")) for name in APPLIED}
    for obj in objects.values():
        ready = [c for c in obj.get("status", {}).get("conditions", ()) if c["type"] == "Ready"]
        if not ready or ready[0]["status"] != "True":
            return None
    managed = "app.kubernetes.io/managed-by=bigmodel-operator"
    listed = cluster.kubectl("get", "pods,deployments,services", "-l", managed, "-o", "json")
    items = json.loads(listed)["items"]
    kinds = sorted(item["kind"] for item in items)
    return {**objects, "children": items} if kinds == CHILDREN else None


def versions(cluster: Cluster) -> dict[str, tuple[str, int]]:
    """resourceVersion and generation of what was applied."""
    found = {}
    for name in APPLIED:
        meta = json.loads(cluster.kubectl("get", name, "-o", "json"))["metadata"]
        found[name] = (meta["resourceVersion"], meta["generation"])
    return found


@pytest.mark.parametrize("mode", APPLY_MODES, ids=list(APPLY_MODES))
def test_applying_the_examples_again_changes_nothing(
    mode: str, operator: Operator, cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    flags = APPLY_MODES[mode]
    manifests = tmp_path / "manifests.yaml"
    manifests.write_text(cluster.kubectl("kustomize", overlay(tmp_path, namespace)))
    cluster.kubectl("apply", *flags, "-f", str(manifests))
    seen = wait_for("the operator to act", lambda: acted_on(cluster), 60)
    before = versions(cluster)

    diff = cluster.sandbox.kubectl(
        "-n", namespace, "diff", *flags, "-f", str(manifests), check=False
    )
    assert (diff.returncode, diff.stdout) == (0, ""), diff.stdout + diff.stderr
    cluster.kubectl("apply", *flags, "-f", str(manifests))
    assert versions(cluster) == before

    for name in APPLIED:
        assert verdict(seen[name]) == "Current", name
        kind = seen[name]["kind"]
        assert health(script_path(kind).read_text(), seen[name])["status"] == "Healthy", name
    for child in seen["children"]:
        meta = child["metadata"]
        keys = {*meta.get("labels", {}), *meta.get("annotations", {})}
        assert not keys & {*TRACKING["labels"], *TRACKING["annotations"]}, meta["name"]


def test_a_resource_just_applied_waits_for_the_operator(cluster: Cluster) -> None:
    """Before any operator acts, the CRD's status default makes kstatus (Flux) and the
    Argo CD check wait instead of reading the new job as reconciled."""
    job = next(d for d in yaml.safe_load_all(WORKLOADS.joinpath("finetune-job.yaml").read_text()))
    cluster.kubectl("apply", "-f", "-", input=json.dumps(job))
    created = cluster.job("finetune")
    assert created["status"]["observedGeneration"] == -1
    assert verdict(created) == "InProgress"
    assert health(script_path("BigModelJob").read_text(), created)["status"] == "Progressing"
