"""The sandbox's request log: one JSON line per API request, and what RBAC it implies.

Every request the API server answers is recorded in `<state-dir>/requests.log` with its
verb, apiGroup, resource, subresource, namespace, name, user agent, user, status code and
the faults injected into it, if any.
`permissions` turns such a log into the (apiGroup, resource, verb) triples a client used,
from which a minimal Role/ClusterRole can be derived.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, NamedTuple

from kubesandbox.apiserver.http.paths import Target, verb

FILENAME = "requests.log"


class Permission(NamedTuple):
    """One RBAC grant: `resource` includes the subresource (`pods/log`), as rules name it."""

    api_group: str
    resource: str
    verb: str


def record(
    method: str,
    path: str,
    target: Target | None,
    watch: bool,
    user_agent: str,
    code: int,
    when: datetime | None = None,
    user: str | None = None,
    fault: str | None = None,
) -> dict[str, Any]:
    """The log entry of one request (non-resource paths have null resource fields): `user`
    is who the credentials say (None: none valid), `fault` what the fault plan injected."""
    entry: dict[str, Any] = {
        "time": (when or datetime.now(UTC)).isoformat(timespec="milliseconds"),
        "method": method,
        "path": path,
        "verb": verb(method, target, watch) if target else method.lower(),
        "apiGroup": target.group if target else None,
        "resource": target.plural if target else None,
        "subresource": (target.subresource or None) if target else None,
        "namespace": target.namespace if target else None,
        "name": (target.name or None) if target else None,
        "userAgent": user_agent,
        "user": user,
        "code": code,
    }
    if fault:
        entry["fault"] = fault
    return entry


def permissions(
    records: Iterable[dict[str, Any]], user_agent: str | None = None
) -> set[Permission]:
    """The (apiGroup, resource[/subresource], verb) triples used by resource requests.

    `user_agent` keeps only requests whose user agent starts with it (e.g. `kopf/`), so one
    client's needs can be told apart from the test's own kubectl calls. Requests refused for
    reasons RBAC could not fix (404 of a resource type, 405) still count: the client tried.
    """
    out: set[Permission] = set()
    for entry in records:
        resource = entry.get("resource")
        if not resource:
            continue
        if user_agent is not None and not str(entry.get("userAgent", "")).startswith(user_agent):
            continue
        sub = entry.get("subresource")
        out.add(
            Permission(
                entry.get("apiGroup") or "",
                f"{resource}/{sub}" if sub else str(resource),
                str(entry["verb"]),
            )
        )
    return out


def read(path: Path) -> list[dict[str, Any]]:
    """The entries of a request log file (skipping a torn last line)."""
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:
            continue
    return entries


class RequestLog:
    """Appends entries to the log file, flushed after each so readers see them at once."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._file: IO[str] = os.fdopen(descriptor, "a", encoding="utf-8")

    def write(self, entry: dict[str, Any]) -> None:
        """Append one entry."""
        self._file.write(json.dumps(entry, separators=(",", ":")) + "\n")
        self._file.flush()

    def close(self) -> None:
        """Close the file."""
        self._file.close()
