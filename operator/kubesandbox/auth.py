"""Who calls the API: bearer tokens, as kube-apiserver's token authenticators check them.

Creating a pod in the sandbox runs a command as the user who started it, so its API is not
open to every local process (kind and minikube require client certificates). `kubesandbox
up` mints a random admin token, written only into its kubeconfig (mode 0600); the kubelet
mints one token per pod, bound to the pod (revoked when the pod is removed, like a bound
service account token) and written only into the pod's own kubeconfig. A request without a
valid token is answered 401, except the health and version paths, which kube-apiserver also
serves to anyone (the `system:public-info-viewer` role).
"""

from __future__ import annotations

import hashlib
import secrets

ADMIN = "sandbox-admin"
"""The user of the kubeconfig `kubesandbox up` writes: allowed everything."""
PUBLIC_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/version"})
"""Answered without credentials, as kube-apiserver answers them to `system:anonymous`."""


def service_account_user(namespace: str, service_account: str) -> str:
    """The user name of a service account's token: `system:serviceaccount:<ns>:<name>`."""
    return f"system:serviceaccount:{namespace}:{service_account}"


def _digest(token: str) -> str:
    """What is kept of a token: its hash (the comparison then leaks nothing of the token)."""
    return hashlib.sha256(token.encode()).hexdigest()


class Tokens:
    """The valid bearer tokens and their users: the admin's, and one per running pod."""

    def __init__(self) -> None:
        self.admin = secrets.token_urlsafe(32)
        self._users = {_digest(self.admin): ADMIN}

    def issue(self, user: str) -> str:
        """A new random token for `user`."""
        token = secrets.token_urlsafe(32)
        self._users[_digest(token)] = user
        return token

    def revoke(self, token: str) -> None:
        """Make `token` invalid (its pod is gone)."""
        self._users.pop(_digest(token), None)

    def user(self, authorization: str) -> str | None:
        """The user of an `Authorization` header (`Bearer <token>`), or None when it carries
        no valid token."""
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return self._users.get(_digest(token.strip()))
