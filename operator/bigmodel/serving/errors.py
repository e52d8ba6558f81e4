"""Request errors, their two wire formats, the rejection reasons and the exit codes.

One exception type carries everything a response needs (status, message, the field at
fault, the metrics reason); each protocol only renders it: the Open Inference Protocol as
`{"error": "..."}`, OpenAI as `{"error": {"message", "type", "param", "code"}}`.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import Any

RETRY_AFTER_SECONDS = 1
"""What a 503 asks the client to wait before retrying (another replica, usually)."""


class ExitCode(IntEnum):
    """The server's exit status; the operator reads a non-zero one with the termination message."""

    OK = 0
    """Stopped by SIGTERM/SIGINT after draining."""
    ERROR = 1
    """An unexpected error (a bug): see the log."""
    USAGE = 2
    """A bad flag or environment variable."""
    MODEL_LOAD_FAILED = 3
    """The model could not be loaded or its warm-up forward failed."""
    LISTEN_FAILED = 4
    """The HTTP port could not be bound."""


class RefusalReason(StrEnum):
    """Why a request was refused: the `reason` label of the rejections counter."""

    INVALID = "invalid"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    TOO_LARGE = "too_large"
    QUEUE_FULL = "queue_full"
    DRAINING = "draining"
    NOT_READY = "not_ready"
    INTERNAL = "internal"


class RequestRefused(Exception):
    """A refused request: HTTP status, a message naming the field, and where it failed."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        reason: RefusalReason = RefusalReason.INVALID,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.reason = reason
        self.headers = headers or {}


def invalid(param: str, message: str) -> RequestRefused:
    """400 for a bad field; the message starts with the field's name."""
    return RequestRefused(400, f"{param}: {message}", param=param)


def unavailable(reason: RefusalReason, message: str) -> RequestRefused:
    """503 with Retry-After: the queue is full, the server drains or is not ready yet."""
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    return RequestRefused(503, message, reason=reason, headers=headers)


def oip_body(error: RequestRefused) -> dict[str, Any]:
    """The Open Inference Protocol's error body."""
    return {"error": error.message}


_OPENAI_CODES = {
    RefusalReason.NOT_FOUND: "model_not_found",
    RefusalReason.METHOD_NOT_ALLOWED: "method_not_allowed",
    RefusalReason.TOO_LARGE: "request_too_large",
    RefusalReason.QUEUE_FULL: "queue_full",
    RefusalReason.DRAINING: "draining",
    RefusalReason.NOT_READY: "not_ready",
}


def openai_body(error: RequestRefused) -> dict[str, Any]:
    """OpenAI's error body: `type` from the status, `code` from the reason, `param` the field."""
    kind = "server_error" if error.status >= 500 else "invalid_request_error"
    return {
        "error": {
            "message": error.message,
            "type": kind,
            "param": error.param,
            "code": _OPENAI_CODES.get(error.reason),
        }
    }
