"""The sandbox's API requires credentials: its kubeconfig's token, or a pod's own token,
over TLS; anything else is refused with 401 (and logged), the admin routes with 403."""

from __future__ import annotations

import json
import stat
import urllib.error
import urllib.request
from typing import Any

import pytest
import yaml

from kubesandbox.apiserver.http import requestlog
from kubesandbox.testing import RunningSandbox, wait_for

pytestmark = pytest.mark.integration

POD_CLIENT = """\
import json, os, sys, urllib.request, ssl, base64, yaml
config = yaml.safe_load(open(os.environ["KUBECONFIG"]))
cluster, user = config["clusters"][0]["cluster"], config["users"][0]["user"]
ca = base64.b64decode(cluster["certificate-authority-data"]).decode()
tls = ssl.create_default_context(cadata=ca)
ns = config["contexts"][0]["context"]["namespace"]
def call(path):
    request = urllib.request.Request(cluster["server"] + path,
                                     headers={"Authorization": "Bearer " + user["token"]})
    try:
        return urllib.request.urlopen(request, context=tls).status
    except urllib.error.HTTPError as exc:
        return exc.code
pods, admin = call(f"/api/v1/namespaces/{ns}/pods"), call("/sandbox/v1/faults")
print(json.dumps({"pods": pods, "admin": admin, "token": user["token"]}), flush=True)
"""


def _status(sandbox: RunningSandbox, path: str, token: str | None) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    request = urllib.request.Request(sandbox.url + path, headers=headers)
    try:
        with sandbox.urlopen(request) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


def test_a_request_without_credentials_is_refused_with_401_and_logged(
    sandbox: RunningSandbox,
) -> None:
    code, body = _status(sandbox, "/api/v1/namespaces/default/pods", None)
    assert code == 401
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }
    entries = requestlog.read(sandbox.state_dir / requestlog.FILENAME)
    refused = [e for e in entries if e["code"] == 401 and e["path"].endswith("/default/pods")]
    assert refused and refused[-1]["user"] is None
    assert (
        "refused a request without valid credentials"
        in (sandbox.state_dir / "sandbox.log").read_text()
    )


def test_a_wrong_token_is_refused_and_the_kubeconfig_token_is_accepted(
    sandbox: RunningSandbox,
) -> None:
    assert _status(sandbox, "/api/v1/namespaces", "not-the-token")[0] == 401
    assert _status(sandbox, "/api/v1/namespaces", sandbox.faults.token)[0] == 200


def test_plain_http_is_not_served(sandbox: RunningSandbox) -> None:
    plain = sandbox.url.replace("https://", "http://") + "/api/v1/namespaces"
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        urllib.request.urlopen(plain, timeout=10)


def test_health_and_version_answer_anyone_as_kube_apiserver_does(sandbox: RunningSandbox) -> None:
    assert _status(sandbox, "/version", None)[0] == 200
    with sandbox.urlopen(sandbox.url + "/healthz") as response:
        assert response.read() == b"ok"


def test_the_kubeconfig_is_private_and_carries_the_ca(sandbox: RunningSandbox) -> None:
    assert stat.S_IMODE(sandbox.kubeconfig.stat().st_mode) == 0o600
    cluster = yaml.safe_load(sandbox.kubeconfig.read_text())["clusters"][0]["cluster"]
    assert cluster["server"].startswith("https://127.0.0.1:")
    assert cluster["certificate-authority-data"]
    for private in ("pods", "volumes", "logs", "pki"):
        assert stat.S_IMODE((sandbox.state_dir / private).stat().st_mode) == 0o700


def test_a_pod_reaches_the_api_with_its_own_token_which_dies_with_it(
    sandbox: RunningSandbox,
) -> None:
    with sandbox.namespace("auth") as ns:
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "client"},
            "spec": {
                "restartPolicy": "Never",
                "containers": [
                    {"name": "main", "image": "python", "command": ["python", "-c", POD_CLIENT]}
                ],
            },
        }
        sandbox.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(pod))
        wait_for(
            "the pod to finish",
            lambda: sandbox.get(ns, "pod", "client")["status"].get("phase") == "Succeeded",
            context=lambda: sandbox.kubectl("logs", "-n", ns, "client", check=False).stdout,
        )
        said = json.loads(sandbox.kubectl("logs", "-n", ns, "client").stdout)
        assert (said["pods"], said["admin"]) == (200, 403)  # its namespace, not the admin's
        entries = requestlog.read(sandbox.state_dir / requestlog.FILENAME)
        users = {e["user"] for e in entries if e["path"] == f"/api/v1/namespaces/{ns}/pods"}
        assert f"system:serviceaccount:{ns}:default" in users
        sandbox.kubectl("delete", "pod", "-n", ns, "client")
        assert _status(sandbox, f"/api/v1/namespaces/{ns}/pods", said["token"])[0] == 401


@pytest.mark.parametrize(
    "stream", ["exec?command=true&stdout=true", "portforward?ports=80", "attach"]
)
def test_exec_attach_and_port_forward_without_credentials_are_refused(
    sandbox: RunningSandbox, stream: str
) -> None:
    path = f"/api/v1/namespaces/default/pods/any/{stream}"
    assert _status(sandbox, path, None)[0] == 401


def test_only_the_admin_reaches_the_admin_routes(sandbox: RunningSandbox) -> None:
    assert _status(sandbox, "/sandbox/v1/faults", None)[0] == 401
    assert _status(sandbox, "/sandbox/v1/faults", sandbox.faults.token)[0] == 200
