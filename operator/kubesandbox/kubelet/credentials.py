"""A pod's own credentials: a token bound to the pod, in a kubeconfig only it is given.

As a bound service account token: issued for the pod's service account when the kubelet
starts the pod, revoked when the pod is removed. The pod's processes find it through
`KUBECONFIG` (the in-cluster token path `/var/run/secrets/...` cannot be mounted for a host
process), so kopf and the kubernetes client in a pod reach the sandbox's API unchanged.
"""

from __future__ import annotations

from pathlib import Path

from kubesandbox.auth import Tokens, service_account_user
from kubesandbox.kubeconfig import write_kubeconfig
from kubesandbox.kubelet import volumes
from kubesandbox.network import addresses
from kubesandbox.objects import Obj

FILENAME = "kubeconfig"


def kubeconfig_path(state_dir: Path, pod: Obj) -> Path:
    """Where the pod's kubeconfig is (in the kubelet's per-pod directory)."""
    return volumes.pod_dir(state_dir, pod) / FILENAME


def issue(tokens: Tokens, state_dir: Path, api_port: int, ca_pem: bytes, pod: Obj) -> str:
    """Mint the pod's token and write its kubeconfig (mode 0600); returns the token."""
    namespace = pod["metadata"]["namespace"]
    account = pod.get("spec", {}).get("serviceAccountName") or "default"
    token = tokens.issue(service_account_user(namespace, account))
    server = f"https://{addresses.HOST_IP}:{api_port}"
    write_kubeconfig(kubeconfig_path(state_dir, pod), server, ca_pem, token, namespace)
    return token
