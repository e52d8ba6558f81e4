"""API errors as kube-apiserver reports them: `Status` objects with reason, details and causes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kubesandbox.access import Rejected

_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "AlreadyExists",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    501: "NotImplemented",
    503: "ServiceUnavailable",
    504: "Timeout",
}


@dataclass(frozen=True)
class Cause:
    """One `details.causes` entry: which field is wrong and why."""

    reason: str
    message: str
    field: str = ""


@dataclass
class StatusError(Rejected):
    """An error response; `status()` renders it as a `Status` object."""

    code: int
    message: str
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    causes: list[Cause] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    """Response headers besides the body (`Retry-After`)."""

    def __str__(self) -> str:
        return self.message

    def status(self) -> dict[str, Any]:
        """The `Status` object kube-apiserver would send for this error, in its field order
        (kind, apiVersion, metadata, status, message, reason, details, code)."""
        details = dict(self.details)
        if self.causes:
            details["causes"] = [
                {k: v for k, v in vars(c).items() if v or k != "field"} for c in self.causes
            ]
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason or _REASONS.get(self.code, "Unknown"),
        }
        if details:
            body["details"] = details
        body["code"] = self.code
        return body


def _details(group: str, kind: str, name: str) -> dict[str, Any]:
    """The `details` of a Status about one object, in kube's order (name, group, kind);
    `kind` is the resource's plural, or its Kind for Invalid, as kube-apiserver sends."""
    out: dict[str, Any] = {}
    if name:
        out["name"] = name
    if group:
        out["group"] = group
    out["kind"] = kind
    return out


def qualified(group: str, plural: str) -> str:
    """`deployments.apps` or `pods`: how messages name a resource."""
    return f"{plural}.{group}" if group else plural


def not_found(group: str, plural: str, name: str) -> StatusError:
    """404 for a missing object."""
    return StatusError(
        404, f'{qualified(group, plural)} "{name}" not found', details=_details(group, plural, name)
    )


def already_exists(group: str, plural: str, name: str) -> StatusError:
    """409 AlreadyExists for a create of an existing name."""
    return StatusError(
        409,
        f'{qualified(group, plural)} "{name}" already exists',
        "AlreadyExists",
        _details(group, plural, name),
    )


def conflict(group: str, plural: str, name: str, why: str) -> StatusError:
    """409 Conflict, e.g. a stale resourceVersion."""
    return StatusError(
        409,
        f'Operation cannot be fulfilled on {qualified(group, plural)} "{name}": {why}',
        "Conflict",
        _details(group, plural, name),
    )


def invalid(kind: str, group: str, name: str, causes: list[Cause]) -> StatusError:
    """422 Invalid with one cause per bad field, worded like kube-apiserver."""
    what = f"{kind}.{group}" if group else kind
    listed = ", ".join(f"{c.field}: {c.message}" if c.field else c.message for c in causes)
    if len(causes) > 1:
        listed = f"[{listed}]"
    return StatusError(
        422, f'{what} "{name}" is invalid: {listed}', "Invalid", _details(group, kind, name), causes
    )


def bad_request(message: str) -> StatusError:
    """400 BadRequest."""
    return StatusError(400, message)


def success(group: str, plural: str, name: str, uid: str) -> dict[str, Any]:
    """The `Status` a delete returns once the object is gone."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": _details(group, plural, name) | {"uid": uid},
    }
