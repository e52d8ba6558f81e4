"""The sandbox API as real kubectl, helm, kopf and the kubernetes client use it: reads and
writes, conflicts, selectors, apply, dry run, events and the request log (watches and
paging, pod logs, deletion: the test_sandbox_api_* modules beside this one)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from sandbox_objects import configmap

from kubesandbox.testing import wait_for

pytestmark = pytest.mark.integration


def test_kubectl_applies_gets_and_deletes(sandbox: Any, ns: str) -> None:
    manifest = textwrap.dedent(
        f"""
        apiVersion: v1
        kind: ConfigMap
        metadata: {{name: applied, namespace: {ns}}}
        data: {{key: one}}
        """
    )
    assert "created" in sandbox.kubectl("apply", "-f", "-", input=manifest).stdout
    changed = manifest.replace("one", "two")
    assert "configured" in sandbox.kubectl("apply", "-f", "-", input=changed).stdout
    got = json.loads(sandbox.kubectl("get", "cm", "applied", "-n", ns, "-o", "json").stdout)
    assert got["data"] == {"key": "two"}
    sandbox.kubectl("delete", "cm", "applied", "-n", ns)
    missing = sandbox.kubectl("get", "cm", "applied", "-n", ns, check=False)
    assert 'configmaps "applied" not found' in missing.stderr


def test_pod_disruption_budgets_are_stored_and_listed_by_short_name(sandbox: Any, ns: str) -> None:
    manifest = textwrap.dedent(
        f"""
        apiVersion: policy/v1
        kind: PodDisruptionBudget
        metadata: {{name: operator, namespace: {ns}}}
        spec:
          minAvailable: 1
          selector: {{matchLabels: {{app: operator}}}}
        """
    )
    assert "created" in sandbox.kubectl("apply", "-f", "-", input=manifest).stdout
    listed = sandbox.kubectl("get", "pdb", "-n", ns).stdout.splitlines()
    assert listed[0].split() == ["NAME", "MIN", "AVAILABLE", "MAX", "UNAVAILABLE", "ALLOWED",
                                 "DISRUPTIONS", "AGE"]  # fmt: skip
    assert listed[1].split()[:4] == ["operator", "1", "N/A", "0"]
    got = json.loads(sandbox.kubectl("get", "pdb", "operator", "-n", ns, "-o", "json").stdout)
    assert got["spec"]["selector"] == {"matchLabels": {"app": "operator"}}


def test_create_of_an_existing_name_is_409(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(ns, configmap("dup"))
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_config_map(ns, configmap("dup"))
    assert exc.value.status == 409
    assert json.loads(exc.value.body)["reason"] == "AlreadyExists"


def test_replace_with_a_stale_resource_version_is_409(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    first = core.create_namespaced_config_map(ns, configmap("stale"))
    core.patch_namespaced_config_map("stale", ns, {"data": {"k": "newer"}})
    first.data = {"k": "from stale copy"}
    with pytest.raises(ApiException) as exc:
        core.replace_namespaced_config_map("stale", ns, first)
    assert exc.value.status == 409
    assert json.loads(exc.value.body)["reason"] == "Conflict"


def test_set_based_selectors_filter(sandbox: Any, api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    for name, labels in (("a", {"tier": "web"}), ("b", {"tier": "db"}), ("c", {})):
        core.create_namespaced_config_map(ns, configmap(name, labels))

    def names(selector: str) -> list[str]:
        items = core.list_namespaced_config_map(ns, label_selector=selector).items
        return sorted(i.metadata.name for i in items)

    assert names("tier in (web,db)") == ["a", "b"]
    assert names("tier notin (web)") == ["b", "c"]
    assert names("tier") == ["a", "b"]
    assert names("!tier") == ["c"]
    out = sandbox.kubectl("get", "cm", "-n", ns, "-l", "tier!=db", "-o", "name").stdout
    assert out.split() == ["configmap/a", "configmap/c"]
    out = sandbox.kubectl("get", "cm", "-n", ns, "-l", "tier in (db,cache)", "-o", "name").stdout
    assert out.split() == ["configmap/b"]


def test_simulated_node_runs_and_finishes_a_pod(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    pod = {
        "metadata": {"name": "sim"},
        "spec": {
            "nodeSelector": {"type": "simulated"},
            "containers": [{"name": "main", "image": "busybox"}],
        },
    }
    core.create_namespaced_pod(ns, pod)
    wait_for(
        "the pod to run", lambda: core.read_namespaced_pod("sim", ns).status.phase == "Running"
    )
    core.patch_namespaced_pod(
        "sim", ns, {"metadata": {"annotations": {"kubesandbox.dev/exit-code": "7"}}}
    )
    wait_for(
        "the pod to fail", lambda: core.read_namespaced_pod("sim", ns).status.phase == "Failed"
    )
    state = core.read_namespaced_pod("sim", ns).status.container_statuses[0].state
    assert state.terminated.exit_code == 7


def test_kopf_runs_a_handler(sandbox: Any, api: client.ApiClient, ns: str, tmp_path: Path) -> None:
    handlers = tmp_path / "handlers.py"
    handlers.write_text(
        textwrap.dedent(
            """
            import kopf

            @kopf.on.create("configmaps", labels={"kopf-test": "yes"})
            async def mark(patch, **_):
                patch.setdefault("data", {})["handled"] = "true"
            """
        )
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "kopf", "run", "--standalone", "--namespace", ns, str(handlers)],
        env=sandbox.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        core = client.CoreV1Api(api)
        core.create_namespaced_config_map(ns, configmap("kopf", {"kopf-test": "yes"}))
        wait_for(
            "the handler to mark the ConfigMap",
            lambda: (
                (core.read_namespaced_config_map("kopf", ns).data or {}).get("handled") == "true"
            ),
            timeout=30,
        )
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_helm_installs_and_uninstalls_a_chart(
    sandbox: Any, api: client.ApiClient, ns: str, tmp_path: Path
) -> None:
    chart = tmp_path / "tiny"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: tiny\nversion: 0.1.0\n")
    (chart / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-cm\n"
        "data:\n  greeting: hello\n"
    )
    sandbox.helm("install", "rel", str(chart), "-n", ns, "--wait")
    core = client.CoreV1Api(api)
    assert core.read_namespaced_config_map("rel-cm", ns).data == {"greeting": "hello"}
    sandbox.helm("uninstall", "rel", "-n", ns)
    with pytest.raises(ApiException):
        core.read_namespaced_config_map("rel-cm", ns)


# -- generation ------------------------------------------------------------------------


def test_built_in_configmaps_carry_no_generation(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(ns, configmap("nogen"))
    core.patch_namespaced_config_map("nogen", ns, {"data": {"k": "2"}})
    assert core.read_namespaced_config_map("nogen", ns).metadata.generation is None


# -- apply, replace ------------------------------------------------------------------------


def test_server_side_apply_conflicts_with_another_manager(sandbox: Any, ns: str) -> None:
    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: owned}\ndata: {a: '1'}\n"
    sandbox.kubectl("apply", "-n", ns, "--server-side", "-f", "-", input=cm)
    other = cm.replace("'1'", "'2'")
    refused = sandbox.kubectl(
        "apply", "-n", ns, "--server-side", "--field-manager", "other", "-f", "-",
        input=other, check=False,
    )  # fmt: skip
    assert refused.returncode != 0
    assert 'conflict with "kubectl"' in refused.stderr
    sandbox.kubectl(
        "apply", "-n", ns, "--server-side", "--field-manager", "other", "--force-conflicts",
        "-f", "-", input=other,
    )  # fmt: skip
    got = sandbox.kubectl("get", "cm", "owned", "-n", ns, "-o", "jsonpath={.data.a}").stdout
    assert got == "2"


def test_kubectl_replace_with_a_stale_object_is_409(sandbox: Any, ns: str, tmp_path: Path) -> None:
    sandbox.kubectl("create", "configmap", "rep", "-n", ns, "--from-literal=a=1")
    stale = tmp_path / "stale.yaml"
    stale.write_text(sandbox.kubectl("get", "cm", "rep", "-n", ns, "-o", "yaml").stdout)
    sandbox.kubectl("patch", "cm", "rep", "-n", ns, "-p", '{"data":{"a":"2"}}')
    refused = sandbox.kubectl("replace", "-f", str(stale), check=False)
    assert refused.returncode != 0
    assert "Error from server (Conflict)" in refused.stderr
    assert "the object has been modified" in refused.stderr


# -- typed kubectl create (protobuf bodies) --------------------------------------------


def test_typed_kubectl_create_commands_work(sandbox: Any, api: client.ApiClient, ns: str) -> None:
    sandbox.kubectl("create", "configmap", "tc", "-n", ns, "--from-literal=a=b")
    sandbox.kubectl("create", "secret", "generic", "ts", "-n", ns, "--from-literal=pw=s3")
    sandbox.kubectl("create", "serviceaccount", "tsa", "-n", ns)
    sandbox.kubectl("create", "deployment", "td", "-n", ns, "--image=busybox", "--replicas=2")
    name = f"typed-{uuid.uuid4().hex[:6]}"
    sandbox.kubectl("create", "namespace", name)
    core = client.CoreV1Api(api)
    assert core.read_namespaced_config_map("tc", ns).data == {"a": "b"}
    assert core.read_namespaced_secret("ts", ns).data == {"pw": "czM="}
    assert core.read_namespaced_service_account("tsa", ns).metadata.name == "tsa"
    deployment = client.AppsV1Api(api).read_namespaced_deployment("td", ns)
    assert deployment.spec.replicas == 2
    assert deployment.spec.template.spec.containers[0].image == "busybox"
    assert core.read_namespace(name).status.phase == "Active"
    core.delete_namespace(name)


# -- field validation, dry run ---------------------------------------------------------


def test_server_dry_run_stores_nothing(sandbox: Any, api: client.ApiClient, ns: str) -> None:
    out = sandbox.kubectl("create", "configmap", "dry", "-n", ns, "--dry-run=server", "-o", "json")
    assert json.loads(out.stdout)["metadata"]["uid"]
    core = client.CoreV1Api(api)
    with pytest.raises(ApiException):
        core.read_namespaced_config_map("dry", ns)
    core.create_namespaced_config_map(ns, configmap("kept"))
    sandbox.kubectl("delete", "cm", "kept", "-n", ns, "--dry-run=server")
    sandbox.kubectl("patch", "cm", "kept", "-n", ns, "--dry-run=server", "-p", '{"data":{"k":"x"}}')
    assert core.read_namespaced_config_map("kept", ns).data == {"k": "v"}


# -- lists, watches --------------------------------------------------------------------


def test_kubectl_describe_shows_core_events_of_the_object(
    sandbox: Any, api: client.ApiClient, ns: str
) -> None:
    core = client.CoreV1Api(api)
    cm = core.create_namespaced_config_map(ns, configmap("described"))
    involved = {"kind": "ConfigMap", "namespace": ns, "name": "described", "uid": cm.metadata.uid}
    for name, target in (("mine", involved), ("other", involved | {"name": "x", "uid": "1"})):
        core.create_namespaced_event(
            ns,
            {
                "metadata": {"name": name},
                "involvedObject": target,
                "reason": f"Reason{name.title()}",
                "message": f"about {target['name']}",
                "type": "Normal",
                "count": 1,
                "source": {"component": "test"},
            },
        )
    out = sandbox.kubectl("describe", "cm", "described", "-n", ns).stdout
    assert "ReasonMine" in out
    assert "ReasonOther" not in out
    assert "ReasonMine" in sandbox.kubectl("events", "-n", ns).stdout


# -- request log -------------------------------------------------------------------------


def test_every_request_is_logged_with_what_rbac_needs(
    sandbox: Any, api: client.ApiClient, ns: str
) -> None:
    from kubesandbox.apiserver.http import requestlog

    client.CoreV1Api(api).create_namespaced_config_map(ns, configmap("logged"))
    sandbox.kubectl("get", "cm", "logged", "-n", ns)
    entries = requestlog.read(sandbox.state_dir / requestlog.FILENAME)
    mine = [e for e in entries if e["namespace"] == ns and e["name"] == "logged"]
    assert {(e["verb"], e["code"]) for e in mine} == {("get", 200)}
    kubectl = [e for e in mine if e["userAgent"].startswith("kubectl/")]
    assert kubectl[0]["apiGroup"] == "" and kubectl[0]["resource"] == "configmaps"
    used = requestlog.permissions(entries, user_agent="kubectl/")
    assert requestlog.Permission("", "configmaps", "get") in used
