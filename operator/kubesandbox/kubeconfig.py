"""The kubeconfig the sandbox writes for kubectl, helm and the Python clients."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

CONTEXT = "bigmodel-sandbox"


def kubeconfig(server: str) -> dict[str, Any]:
    """A kubeconfig for a plain-http server on localhost with one all-powerful user."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT, "cluster": {"server": server}}],
        "users": [{"name": CONTEXT, "user": {}}],
        "contexts": [
            {
                "name": CONTEXT,
                "context": {"cluster": CONTEXT, "user": CONTEXT, "namespace": "default"},
            }
        ],
        "current-context": CONTEXT,
        "preferences": {},
    }


def write_kubeconfig(path: Path, server: str) -> Path:
    """Write the kubeconfig (mode 0600) and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(kubeconfig(server), sort_keys=False), encoding="utf-8")
    path.chmod(0o600)
    return path
