"""The project's CRDs served by the sandbox, as kubectl, kopf and the kubernetes client use
them: explain, printer columns, schema validation and defaults, generation, apply, scale."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from kubesandbox.testing import RunningSandbox, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def api(sandbox: RunningSandbox) -> client.ApiClient:
    """A kubernetes client configured from the sandbox's kubeconfig."""
    return config.new_client_from_config(str(sandbox.kubeconfig))


def _custom(api: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api)


def _rv(sandbox: Any, namespace: str, what: str) -> str:
    out = sandbox.kubectl(
        "get", what, "-n", namespace, "-o", "jsonpath={.metadata.resourceVersion}"
    )
    return str(out.stdout)


REPO = Path(__file__).resolve().parents[2]


BMJ = ("bigmodel.dev", "v1alpha1", "bigmodeljobs")


BMS = ("bigmodel.dev", "v1alpha1", "bigmodelservices")


@pytest.fixture(scope="module")
def crds(sandbox: Any) -> None:
    """The project's CRDs, applied with kubectl as a user would."""
    out = sandbox.kubectl("apply", "-f", str(REPO / "crds")).stdout
    assert "bigmodeljobs.bigmodel.dev" in out


def _job(name: str, **spec: Any) -> dict[str, Any]:
    body = {"image": "trainer:1", "command": ["python", "train.py"], "nodes": 1, **spec}
    return {
        "apiVersion": "bigmodel.dev/v1alpha1",
        "kind": "BigModelJob",
        "metadata": {"name": name},
        "spec": body,
    }


def _service(name: str, replicas: int = 2) -> dict[str, Any]:
    return {
        "apiVersion": "bigmodel.dev/v1alpha1",
        "kind": "BigModelService",
        "metadata": {"name": name},
        "spec": {
            "runtime": "torch",
            "model": {"name": "m", "uri": "/models/m"},
            "replicas": replicas,
        },
    }


@pytest.mark.usefixtures("crds")
def test_kubectl_explain_describes_the_job_spec(sandbox: Any) -> None:
    out = sandbox.kubectl("explain", "bigmodeljob.spec").stdout
    assert "KIND:       BigModelJob" in out
    assert "procsPerNode" in out


@pytest.mark.usefixtures("crds")
def test_kubectl_get_shows_the_printer_columns(sandbox: Any, namespace: str) -> None:
    sandbox.kubectl("apply", "-n", namespace, "-f", str(REPO / "examples" / "cpu-job.yaml"))
    lines = sandbox.kubectl("get", "bmj", "-n", namespace).stdout.splitlines()
    assert lines[0].split() == ["NAME", "PHASE", "NODES", "RESTARTS", "T", "S", "AGE"]
    assert lines[1].split()[:2] == ["cpu-demo", "2"]
    wide = sandbox.kubectl("get", "bmj", "-n", namespace, "-o", "wide").stdout.splitlines()[0]
    assert "RUNNING" in wide.split()  # priority-1 column


@pytest.mark.usefixtures("crds")
def test_an_invalid_job_is_refused_with_422_naming_the_field(
    sandbox: Any, api: client.ApiClient, namespace: str
) -> None:
    bad = REPO / "tests" / "invalid" / "job-nodes-zero.yaml"
    refused = sandbox.kubectl("apply", "-n", namespace, "-f", str(bad), check=False)
    assert refused.returncode != 0
    assert 'BigModelJob "bad" is invalid: spec.nodes: Invalid value: 0' in refused.stderr
    with pytest.raises(ApiException) as exc:
        _custom(api).create_namespaced_custom_object(
            *BMJ[:2], namespace, BMJ[2], _job("bad", nodes=0)
        )
    assert exc.value.status == 422
    causes = json.loads(exc.value.body)["details"]["causes"]
    assert [c["field"] for c in causes] == ["spec.nodes"]


@pytest.mark.usefixtures("crds")
def test_schema_defaults_appear_on_a_created_job(api: client.ApiClient, namespace: str) -> None:
    created = _custom(api).create_namespaced_custom_object(
        *BMJ[:2], namespace, BMJ[2], _job("dflt")
    )
    assert created["spec"]["runPolicy"]["backoffLimit"] == 3
    assert created["metadata"]["generation"] == 1


@pytest.mark.usefixtures("crds")
def test_generation_follows_spec_changes_but_not_status(
    api: client.ApiClient, namespace: str
) -> None:
    custom = _custom(api)
    custom.create_namespaced_custom_object(*BMJ[:2], namespace, BMJ[2], _job("gen"))
    custom.patch_namespaced_custom_object_status(
        *BMJ[:2], namespace, BMJ[2], "gen", {"status": {"phase": "Running"}}
    )
    assert (
        custom.get_namespaced_custom_object(*BMJ[:2], namespace, BMJ[2], "gen")["metadata"][
            "generation"
        ]
        == 1
    )
    custom.patch_namespaced_custom_object(
        *BMJ[:2], namespace, BMJ[2], "gen", {"spec": {"runPolicy": {"suspend": True}}}
    )
    got = custom.get_namespaced_custom_object(*BMJ[:2], namespace, BMJ[2], "gen")
    assert (got["metadata"]["generation"], got["status"]["phase"]) == (2, "Running")


@pytest.mark.usefixtures("crds")
@pytest.mark.parametrize("server_side", [False, True], ids=["client-side", "server-side"])
def test_reapplying_the_same_manifest_is_a_no_op(
    sandbox: Any, namespace: str, server_side: bool
) -> None:
    mode = ["--server-side"] if server_side else []
    job = str(REPO / "examples" / "cpu-job.yaml")
    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: conf}\ndata: {a: '1'}\n"
    sandbox.kubectl("apply", "-n", namespace, *mode, "-f", job)
    sandbox.kubectl("apply", "-n", namespace, *mode, "-f", "-", input=cm)
    before = (_rv(sandbox, namespace, "bmj/cpu-demo"), _rv(sandbox, namespace, "cm/conf"))
    again = sandbox.kubectl("apply", "-n", namespace, *mode, "-f", job).stdout
    sandbox.kubectl("apply", "-n", namespace, *mode, "-f", "-", input=cm)
    assert ("serverside-applied" if server_side else "unchanged") in again
    assert (_rv(sandbox, namespace, "bmj/cpu-demo"), _rv(sandbox, namespace, "cm/conf")) == before
    changed = sandbox.kubectl(
        "apply", "-n", namespace, *mode, "-f", "-", input=cm.replace("'1'", "'2'")
    )
    assert changed.returncode == 0
    assert _rv(sandbox, namespace, "cm/conf") != before[1]


@pytest.mark.usefixtures("crds")
def test_field_validation_strict_warn_and_ignore(sandbox: Any, namespace: str) -> None:
    manifest = json.dumps(
        _job("fv", bogus=1) | {"metadata": {"name": "fv", "namespace": namespace}}
    )
    strict = sandbox.kubectl("create", "--validate=strict", "-f", "-", input=manifest, check=False)
    assert strict.returncode != 0
    assert (
        'BigModelJob in version "v1alpha1" cannot be handled as a BigModelJob: '
        'strict decoding error: unknown field "spec.bogus"'
    ) in strict.stderr
    warn = sandbox.kubectl("create", "--validate=warn", "-f", "-", input=manifest)
    assert 'Warning: unknown field "spec.bogus"' in warn.stderr
    sandbox.kubectl("delete", "bmj", "fv", "-n", namespace)
    ignore = sandbox.kubectl("create", "--validate=ignore", "-f", "-", input=manifest)
    assert "Warning" not in ignore.stderr
    stored = sandbox.kubectl("get", "bmj", "fv", "-n", namespace, "-o", "json").stdout
    assert "bogus" not in json.loads(stored)["spec"]  # pruned either way


@pytest.mark.usefixtures("crds")
def test_kubectl_scale_writes_the_replicas_of_a_service(
    sandbox: Any, api: client.ApiClient, namespace: str
) -> None:
    _custom(api).create_namespaced_custom_object(*BMS[:2], namespace, BMS[2], _service("sc"))
    sandbox.kubectl("scale", "bms", "sc", "-n", namespace, "--replicas=3")
    got = _custom(api).get_namespaced_custom_object(*BMS[:2], namespace, BMS[2], "sc")
    assert got["spec"]["replicas"] == 3
    scale = _custom(api).get_namespaced_custom_object_scale(*BMS[:2], namespace, BMS[2], "sc")
    assert (scale["kind"], scale["spec"]["replicas"]) == ("Scale", 3)


@pytest.mark.usefixtures("crds")
def test_kopf_patches_the_status_of_a_custom_resource(
    sandbox: Any, api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    handlers = tmp_path / "handlers.py"
    handlers.write_text(
        textwrap.dedent(
            """
            import kopf

            @kopf.on.startup()
            def configure(settings, **_):
                settings.persistence.finalizer = "bigmodel.dev/test-finalizer"

            @kopf.on.create("bigmodel.dev", "v1alpha1", "bigmodeljobs")
            async def started(body, patch, **_):
                patch.status["phase"] = "Running"
                kopf.info(body, reason="Started", message="job started")

            @kopf.on.delete("bigmodel.dev", "v1alpha1", "bigmodeljobs")
            async def finished(**_):
                pass
            """
        )
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kopf",
            "run",
            "--standalone",
            "--namespace",
            namespace,
            str(handlers),
        ],
        env=sandbox.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    custom = _custom(api)
    try:
        custom.create_namespaced_custom_object(*BMJ[:2], namespace, BMJ[2], _job("kopf"))

        def phase() -> str | None:
            got = custom.get_namespaced_custom_object(*BMJ[:2], namespace, BMJ[2], "kopf")
            return got.get("status", {}).get("phase")  # type: ignore[no-any-return]

        wait_for("the Running phase", lambda: phase() == "Running", timeout=30)
        got = custom.get_namespaced_custom_object(*BMJ[:2], namespace, BMJ[2], "kopf")
        assert "bigmodel.dev/test-finalizer" in got["metadata"]["finalizers"]
        wait_for(  # kopf posts core/v1 events; kubectl reads them by field selector
            "the started event",
            lambda: (
                "job started" in sandbox.kubectl("describe", "bmj", "kopf", "-n", namespace).stdout
            ),
        )
        custom.delete_namespaced_custom_object(*BMJ[:2], namespace, BMJ[2], "kopf")

        def gone() -> bool:
            try:
                custom.get_namespaced_custom_object(*BMJ[:2], namespace, BMJ[2], "kopf")
            except ApiException as exc:
                return exc.status == 404
            return False

        wait_for("the job gone", gone, timeout=30)  # the delete handler ran, kopf released it
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.mark.usefixtures("crds")
def test_server_side_apply_to_status_removes_fields_the_manager_stopped_applying(
    sandbox: Any, api: client.ApiClient, namespace: str
) -> None:
    _custom(api).create_namespaced_custom_object(
        "bigmodel.dev", "v1alpha1", namespace, "bigmodeljobs", _job("ssa-status")
    )
    path = f"/apis/bigmodel.dev/v1alpha1/namespaces/{namespace}/bigmodeljobs/ssa-status/status"

    def apply_status(telemetry: dict[str, Any]) -> dict[str, Any]:
        body = {k: v for k, v in _job("ssa-status").items() if k != "spec"}
        request = urllib.request.Request(
            f"{sandbox.url}{path}?fieldManager=telemetry&force=true",
            data=json.dumps({**body, "status": {"telemetry": telemetry}}).encode(),
            headers={"Content-Type": "application/apply-patch+yaml", **sandbox.headers()},
            method="PATCH",
        )
        with sandbox.urlopen(request) as response:
            return dict(json.load(response)["status"]["telemetry"])

    assert apply_status({"n": 2, "stragglers": ["a"]}) == {"n": 2, "stragglers": ["a"]}
    assert apply_status({"n": 2}) == {"n": 2}
