"""Where the operator connects: KUBECONFIG wins over in-cluster settings, as in client-go."""

from __future__ import annotations

from pathlib import Path

import pytest

from bigmodel.controller.k8s import connection_info, load_client_config

KUBECONFIG = """
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "http://127.0.0.1:6443"}}]
users: [{name: u, user: {token: s3cret}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
"""


@pytest.fixture
def kubeconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG)
    monkeypatch.setenv("KUBECONFIG", str(path))
    # What a pod (or a sandbox pod) has: the in-cluster address of the API server.
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    return path


def test_kubeconfig_wins_over_the_in_cluster_address(kubeconfig: Path) -> None:
    assert load_client_config().host == "http://127.0.0.1:6443"


def test_kopf_logs_in_with_the_same_server_and_token(kubeconfig: Path) -> None:
    info = connection_info(load_client_config())
    assert (info.server, info.scheme, info.token) == ("http://127.0.0.1:6443", "Bearer", "s3cret")
