"""The sandbox API as real kubectl, helm, kopf and the kubernetes client use it."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

pytestmark = pytest.mark.integration


def _cm(name: str, labels: dict[str, str] | None = None, **meta: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels or {}, **meta}, "data": {"k": "v"}}


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
    core.create_namespaced_config_map(ns, _cm("dup"))
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_config_map(ns, _cm("dup"))
    assert exc.value.status == 409
    assert json.loads(exc.value.body)["reason"] == "AlreadyExists"


def test_replace_with_a_stale_resource_version_is_409(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    first = core.create_namespaced_config_map(ns, _cm("stale"))
    core.patch_namespaced_config_map("stale", ns, {"data": {"k": "newer"}})
    first.data = {"k": "from stale copy"}
    with pytest.raises(ApiException) as exc:
        core.replace_namespaced_config_map("stale", ns, first)
    assert exc.value.status == 409
    assert json.loads(exc.value.body)["reason"] == "Conflict"


def test_set_based_selectors_filter(sandbox: Any, api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    for name, labels in (("a", {"tier": "web"}), ("b", {"tier": "db"}), ("c", {})):
        core.create_namespaced_config_map(ns, _cm(name, labels))

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


def test_watch_resumes_from_a_resource_version(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    start = core.list_namespaced_config_map(ns).metadata.resource_version
    core.create_namespaced_config_map(ns, _cm("w1"))
    core.patch_namespaced_config_map("w1", ns, {"data": {"k": "2"}})
    core.delete_namespaced_config_map("w1", ns)
    stream = watch.Watch().stream(
        core.list_namespaced_config_map, ns, resource_version=start, timeout_seconds=2
    )
    seen = [(e["type"], e["object"].metadata.name) for e in stream]
    assert seen == [("ADDED", "w1"), ("MODIFIED", "w1"), ("DELETED", "w1")]


def test_watch_from_a_compacted_resource_version_is_410(
    sandbox_factory: Any, tmp_path: Path
) -> None:
    with sandbox_factory(tmp_path, "--watch-history", "5") as small:
        api = config.new_client_from_config(str(small.kubeconfig))
        core = client.CoreV1Api(api)
        start = core.list_namespaced_config_map("default").metadata.resource_version
        for i in range(10):
            core.create_namespaced_config_map("default", _cm(f"n{i}"))
        response = core.list_namespaced_config_map(
            "default", watch=True, resource_version=start, _preload_content=False
        )
        event = json.loads(response.readline())
    assert event["type"] == "ERROR"
    assert event["object"]["code"] == 410
    assert event["object"]["reason"] == "Expired"


def test_deleting_an_owner_collects_its_dependents(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    owner = core.create_namespaced_config_map(ns, _cm("owner"))
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid}
    core.create_namespaced_config_map(ns, _cm("dependent", ownerReferences=[ref]))
    core.delete_namespaced_config_map("owner", ns)
    with pytest.raises(ApiException) as exc:
        core.read_namespaced_config_map("dependent", ns)
    assert exc.value.status == 404


def test_foreground_deletion_waits_for_dependents(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    owner = core.create_namespaced_config_map(ns, _cm("fg-owner"))
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "fg-owner", "uid": owner.metadata.uid}
    core.create_namespaced_config_map(
        ns, _cm("fg-dep", ownerReferences=[ref], finalizers=["test/hold"])
    )
    core.delete_namespaced_config_map("fg-owner", ns, propagation_policy="Foreground")
    held = core.read_namespaced_config_map("fg-owner", ns)
    assert "foregroundDeletion" in held.metadata.finalizers
    core.patch_namespaced_config_map("fg-dep", ns, {"metadata": {"finalizers": None}})
    with pytest.raises(ApiException):
        core.read_namespaced_config_map("fg-owner", ns)


def test_a_finalizer_holds_deletion_until_removed(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(ns, _cm("held", finalizers=["example.com/hold"]))
    core.delete_namespaced_config_map("held", ns)
    held = core.read_namespaced_config_map("held", ns)
    assert held.metadata.deletion_timestamp is not None
    # finalizers merge under strategic merge patch: remove them with a JSON patch
    core.patch_namespaced_config_map("held", ns, [{"op": "remove", "path": "/metadata/finalizers"}])
    with pytest.raises(ApiException) as exc:
        core.read_namespaced_config_map("held", ns)
    assert exc.value.status == 404


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
    assert _eventually(lambda: core.read_namespaced_pod("sim", ns).status.phase == "Running")
    core.patch_namespaced_pod(
        "sim", ns, {"metadata": {"annotations": {"kubesandbox.dev/exit-code": "7"}}}
    )
    assert _eventually(lambda: core.read_namespaced_pod("sim", ns).status.phase == "Failed")
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
        core.create_namespaced_config_map(ns, _cm("kopf", {"kopf-test": "yes"}))
        assert _eventually(
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


def _custom(api: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api)


def test_built_in_configmaps_carry_no_generation(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(ns, _cm("nogen"))
    core.patch_namespaced_config_map("nogen", ns, {"data": {"k": "2"}})
    assert core.read_namespaced_config_map("nogen", ns).metadata.generation is None


# -- apply, replace ------------------------------------------------------------------------


def _rv(sandbox: Any, ns: str, what: str) -> str:
    out = sandbox.kubectl("get", what, "-n", ns, "-o", "jsonpath={.metadata.resourceVersion}")
    return str(out.stdout)


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
    core.create_namespaced_config_map(ns, _cm("kept"))
    sandbox.kubectl("delete", "cm", "kept", "-n", ns, "--dry-run=server")
    sandbox.kubectl("patch", "cm", "kept", "-n", ns, "--dry-run=server", "-p", '{"data":{"k":"x"}}')
    assert core.read_namespaced_config_map("kept", ns).data == {"k": "v"}


# -- lists, watches --------------------------------------------------------------------


def test_paging_with_limit_and_continue(sandbox: Any, api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    for i in range(5):
        core.create_namespaced_config_map(ns, _cm(f"p{i}"))
    first = core.list_namespaced_config_map(ns, limit=2)
    assert [i.metadata.name for i in first.items] == ["p0", "p1"]
    assert first.metadata.remaining_item_count == 3
    rest = core.list_namespaced_config_map(ns, limit=10, _continue=first.metadata._continue)
    assert [i.metadata.name for i in rest.items] == ["p2", "p3", "p4"]
    assert rest.metadata._continue is None
    chunked = sandbox.kubectl("get", "cm", "-n", ns, "--chunk-size=2", "-v=6", "-o", "name")
    assert len(chunked.stdout.split()) == 5
    assert chunked.stderr.count("limit=2") == 3  # three pages of at most two


def test_watch_sends_bookmarks_and_ends_at_its_timeout(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    start = time.monotonic()
    events = list(
        watch.Watch().stream(
            core.list_namespaced_config_map,
            ns,
            allow_watch_bookmarks=True,
            timeout_seconds=2,
            _request_timeout=10,
        )
    )
    assert 1.5 < time.monotonic() - start < 6
    assert [e["type"] for e in events][-1:] == ["BOOKMARK"]


def test_watch_list_ends_its_initial_events_with_a_bookmark(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(ns, _cm("wl"))
    response = core.list_namespaced_config_map(
        ns,
        watch=True,
        send_initial_events=True,
        resource_version_match="NotOlderThan",
        allow_watch_bookmarks=True,
        timeout_seconds=1,
        _preload_content=False,
    )
    events = [json.loads(line) for line in response.read().splitlines()]
    assert [e["type"] for e in events[:2]] == ["ADDED", "BOOKMARK"]
    annotations = events[1]["object"]["metadata"]["annotations"]
    assert annotations == {"k8s.io/initial-events-end": "true"}


def test_delete_collection_removes_the_selected_objects(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    for name, tier in (("d1", "web"), ("d2", "web"), ("d3", "db")):
        core.create_namespaced_config_map(ns, _cm(name, {"tier": tier}))
    core.delete_collection_namespaced_config_map(ns, label_selector="tier=web")
    assert [i.metadata.name for i in core.list_namespaced_config_map(ns).items] == ["d3"]


# -- subresources ----------------------------------------------------------------------


def _sim_pod(name: str, containers: tuple[str, ...] = ("main",)) -> dict[str, Any]:
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
    core.create_namespaced_pod(ns, _sim_pod("logs", ("main", "side")))
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
    core.create_namespaced_pod(ns, _sim_pod("follow"))
    assert _eventually(lambda: core.read_namespaced_pod("follow", ns).status.phase == "Running")
    _write_log(sandbox, ns, "follow", "main", "first\n")
    follower = subprocess.Popen(
        [*_kubectl(sandbox), "logs", "-f", "follow", "-n", ns],
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


def _kubectl(sandbox: Any) -> list[str]:
    return [str(Path(sys.executable).parent / "kubectl"), "--kubeconfig", str(sandbox.kubeconfig)]


# -- garbage collection, CRD lifecycle ---------------------------------------------------


def test_orphan_deletion_keeps_dependents_without_the_owner(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    owner = core.create_namespaced_config_map(ns, _cm("o-owner"))
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "o-owner", "uid": owner.metadata.uid}
    core.create_namespaced_config_map(ns, _cm("o-dep", ownerReferences=[ref]))
    stream = watch.Watch().stream(
        core.list_namespaced_config_map,
        ns,
        field_selector="metadata.name=o-owner",
        resource_version=owner.metadata.resource_version,
        timeout_seconds=1,
    )
    core.delete_namespaced_config_map("o-owner", ns, propagation_policy="Orphan")
    seen = [(e["type"], e["object"].metadata.finalizers) for e in stream]
    assert seen == [("MODIFIED", ["orphan"]), ("DELETED", None)]
    assert core.read_namespaced_config_map("o-dep", ns).metadata.owner_references is None


def _widget_crd(group: str) -> dict[str, Any]:
    schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


def test_deleting_a_crd_removes_its_objects_and_discovery(
    sandbox: Any, api: client.ApiClient, ns: str
) -> None:
    group = f"g{uuid.uuid4().hex[:6]}.example.com"
    client.ApiextensionsV1Api(api).create_custom_resource_definition(_widget_crd(group))
    widget = {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "w"}}
    _custom(api).create_namespaced_custom_object(group, "v1", ns, "widgets", widget)
    assert f"widgets.{group}" in _api_resources(sandbox)
    sandbox.kubectl("delete", "crd", f"widgets.{group}")
    assert f"widgets.{group}" not in _api_resources(sandbox)
    with pytest.raises(ApiException) as exc:
        _custom(api).get_namespaced_custom_object(group, "v1", ns, "widgets", "w")
    assert exc.value.status == 404
    client.ApiextensionsV1Api(api).create_custom_resource_definition(_widget_crd(group))
    listed = _custom(api).list_namespaced_custom_object(group, "v1", ns, "widgets")
    assert listed["items"] == []  # recreating the CRD does not bring old objects back


def _api_resources(sandbox: Any) -> list[str]:
    out = sandbox.kubectl("api-resources", "-o", "name", "--cached=false").stdout
    return str(out).split()


# -- events --------------------------------------------------------------------------


def test_kubectl_describe_shows_core_events_of_the_object(
    sandbox: Any, api: client.ApiClient, ns: str
) -> None:
    core = client.CoreV1Api(api)
    cm = core.create_namespaced_config_map(ns, _cm("described"))
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

    client.CoreV1Api(api).create_namespaced_config_map(ns, _cm("logged"))
    sandbox.kubectl("get", "cm", "logged", "-n", ns)
    entries = requestlog.read(sandbox.state_dir / requestlog.FILENAME)
    mine = [e for e in entries if e["namespace"] == ns and e["name"] == "logged"]
    assert {(e["verb"], e["code"]) for e in mine} == {("get", 200)}
    kubectl = [e for e in mine if e["userAgent"].startswith("kubectl/")]
    assert kubectl[0]["apiGroup"] == "" and kubectl[0]["resource"] == "configmaps"
    used = requestlog.permissions(entries, user_agent="kubectl/")
    assert requestlog.Permission("", "configmaps", "get") in used


def _eventually(check: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False
