"""Authentication of API requests: the bearer token's user (`auth.Tokens`), a 401 `Status`
as kube-apiserver's without one (logged), and the admin routes kept to the admin."""

from __future__ import annotations

import logging

from aiohttp import web

from kubesandbox import auth
from kubesandbox.apiserver.errors import StatusError

ADMIN_PREFIX = "/sandbox/"
"""The sandbox's own routes (fault injection): outside the Kubernetes API paths, admin only."""

log = logging.getLogger(__name__)


def authenticate(tokens: auth.Tokens, request: web.Request) -> str | None:
    """The user of the request's bearer token. Without a valid one: 401 (logged), except
    for the public paths (None); under ADMIN_PREFIX, 403 for anyone but the admin."""
    user = tokens.user(request.headers.get("Authorization", ""))
    if user is None and request.path not in auth.PUBLIC_PATHS:
        log.warning(
            "refused a request without valid credentials: %s %s from %s (%s)",
            request.method,
            request.path,
            request.remote,
            request.headers.get("User-Agent", "no user agent"),
        )
        raise StatusError(401, "Unauthorized")
    if request.path.startswith(ADMIN_PREFIX) and user != auth.ADMIN:
        raise StatusError(403, f'forbidden: User "{user}" cannot use the sandbox\'s admin routes')
    return user
