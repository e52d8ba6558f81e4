"""The kubeconfigs the sandbox writes: the user's, for kubectl, helm and the Python clients, and
each pod's own (its token), for the clients that run in pods."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import yaml

CONTEXT = "kubesandbox"


def kubeconfig(
    server: str, ca_pem: bytes, token: str, namespace: str = "default"
) -> dict[str, Any]:
    """A kubeconfig for the https server on localhost whose certificates `ca_pem` signs and
    whose user sends `token`, in `namespace` by default (a pod's is its own, as in-cluster
    clients assume)."""
    cluster = {"server": server, "certificate-authority-data": base64.b64encode(ca_pem).decode()}
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT, "cluster": cluster}],
        "users": [{"name": CONTEXT, "user": {"token": token}}],
        "contexts": [
            {
                "name": CONTEXT,
                "context": {"cluster": CONTEXT, "user": CONTEXT, "namespace": namespace},
            }
        ],
        "current-context": CONTEXT,
        "preferences": {},
    }


def write_kubeconfig(
    path: Path, server: str, ca_pem: bytes, token: str, namespace: str = "default"
) -> Path:
    """Write the kubeconfig, readable by its owner only (it holds the token: mode 0600 from
    its creation, never readable by others even for a moment); returns its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(kubeconfig(server, ca_pem, token, namespace), sort_keys=False)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(text)
    path.chmod(0o600)  # an existing file keeps its mode through O_CREAT
    return path
