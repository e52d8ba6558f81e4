"""End to end on a real cluster (kind, `make kind-up`): the scenarios of the sandbox tests,
through the installed chart and the built images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from support.e2e_cluster import REPO, Cluster
from support.examples import example as load_example

CHART_CRDS = REPO / "charts" / "bigmodel-operator" / "crds"
EXAMPLE = REPO / "examples" / "cpu-job.yaml"


def test_crds_apply_server_side_and_are_established(real_cluster: Cluster) -> None:
    # What users do on every upgrade (Helm never upgrades crds/): idempotent.
    real_cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CHART_CRDS))
    for path in sorted(Path(CHART_CRDS).glob("*.yaml")):
        name = yaml.safe_load(path.read_text())["metadata"]["name"]
        real_cluster.kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")


def test_the_operator_deployment_is_available_and_restricted(real_cluster: Cluster) -> None:
    selector = "app.kubernetes.io/name=bigmodel-operator"
    ns = real_cluster.operator_namespace
    real_cluster.kubectl(
        "wait",
        "-n",
        ns,
        "--for=condition=Available",
        "deployment",
        "-l",
        selector,
        "--timeout=180s",
    )
    # The namespace Pod Security admission would let it in under `restricted`: a server-side
    # dry run of the live pod spec in a namespace that enforces it.
    pods = real_cluster.json("get", "pods", "-n", ns, "-l", selector)["items"]
    assert pods, "no operator pod"
    pod = pods[0]  # the replicas share one pod template
    real_cluster.kubectl(
        "label",
        "namespace",
        real_cluster.namespace,
        "pod-security.kubernetes.io/enforce=restricted",
    )
    spec: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "restricted-check", "namespace": real_cluster.namespace},
        "spec": {key: pod["spec"][key] for key in ("containers", "securityContext", "volumes")},
    }
    for container in spec["spec"]["containers"]:
        container.pop("volumeMounts", None)
        container["volumeMounts"] = [{"name": "tmp", "mountPath": "/tmp"}]
    spec["spec"]["volumes"] = [{"name": "tmp", "emptyDir": {}}]
    real_cluster.kubectl("apply", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump(spec))


def test_the_cpu_example_job_succeeds(real_cluster: Cluster) -> None:
    example = load_example("cpu-job.yaml", "BigModelJob")
    name = example["metadata"]["name"]
    real_cluster.kubectl("apply", "-n", real_cluster.namespace, "-f", str(EXAMPLE))
    real_cluster.kubectl(
        "wait",
        "-n",
        real_cluster.namespace,
        f"bmj/{name}",
        "--for=jsonpath={.status.phase}=Succeeded",
        "--timeout=900s",
        timeout=960,
    )
    job = real_cluster.json("get", "-n", real_cluster.namespace, "bmj", name)
    assert job["status"]["phase"] == "Succeeded"
    pods = real_cluster.json(
        "get", "pods", "-n", real_cluster.namespace, "-l", f"bigmodel.dev/job={name}"
    )
    ranks = sorted(p["metadata"]["labels"]["bigmodel.dev/node-rank"] for p in pods["items"])
    assert ranks == [str(r) for r in range(example["spec"]["nodes"])]


def test_kubectl_get_shows_jobs_by_short_name_and_category(real_cluster: Cluster) -> None:
    example = load_example("cpu-job.yaml", "BigModelJob")
    example["spec"]["runPolicy"] = {**example["spec"].get("runPolicy", {}), "suspend": True}
    real_cluster.kubectl(
        "apply", "-n", real_cluster.namespace, "-f", "-", stdin=yaml.safe_dump(example)
    )
    name = example["metadata"]["name"]
    table = real_cluster.kubectl("get", "bmj", "-n", real_cluster.namespace).splitlines()
    assert table[0].split()[:2] == ["NAME", "PHASE"]
    assert table[1].split()[0] == name
    assert name in real_cluster.kubectl("get", "bigmodel", "-n", real_cluster.namespace)
