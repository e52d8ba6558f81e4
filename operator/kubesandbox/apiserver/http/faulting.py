"""API faults on requests: the fault plan's decision for a resource request, applied before
it is served (a stall, a delay, an error or conflict `Status` as kube-apiserver words them)
and kept on the request for a watch (`decision_of`): a 410 ERROR event at once, or a
connection cut after some seconds."""

from __future__ import annotations

import asyncio
import math
import time

from aiohttp import web

from kubesandbox.apiserver import errors
from kubesandbox.apiserver.errors import StatusError
from kubesandbox.apiserver.http.codec import flag
from kubesandbox.apiserver.http.paths import Target, verb
from kubesandbox.faults.plan import Call, Decision, FaultPlan, Kind, Rule

_KEY = "sandbox-fault"
_NONE = Decision()
_INJECTED = " (injected by the sandbox's fault plan)"


def call_of(request: web.Request, target: Target) -> Call:
    """What the plan sees of a resource request."""
    return Call(
        verb(request.method, target, flag(request.query.get("watch"))),
        target.plural,
        target.subresource,
        target.namespace or "",
        request.path,
        request.headers.get("User-Agent", ""),
    )


async def apply(plan: FaultPlan, request: web.Request, target: Target) -> None:
    """Decide, wait out a stall or delay, and raise the error the plan chose, if any."""
    decision = plan.decide(call_of(request, target))
    request[_KEY] = decision
    if decision.stall_until is not None:
        await asyncio.sleep(max(0.0, decision.stall_until - time.monotonic()))
    if decision.delay:
        await asyncio.sleep(decision.delay)
    if decision.error is not None:
        raise error(decision.error, target)


def decision_of(request: web.Request) -> Decision:
    """The plan's decision for this request (no fault when none was taken)."""
    decision: Decision = request.get(_KEY, _NONE)
    return decision


def labels(request: web.Request) -> str | None:
    """The faults injected into this request, for the request log (None: none)."""
    return ",".join(decision_of(request).labels) or None


def error(rule: Rule, target: Target) -> StatusError:
    """The Status of an error or conflict rule, as kube-apiserver sends it."""
    if rule.kind is Kind.CONFLICT:
        why = "the object has been modified; please apply your changes to the latest version"
        refused = errors.conflict(target.group, target.plural, target.name, why + " and try again")
        refused.message += _INJECTED
        return refused
    retry = str(max(1, math.ceil(rule.delay)))
    if rule.code == 429:
        return StatusError(
            429,
            "Too many requests, please try again later." + _INJECTED,
            details={"retryAfterSeconds": int(retry)},
            headers={"Retry-After": retry},
        )
    if rule.code == 503:
        message = "the server is currently unable to handle the request"
        return StatusError(503, message + _INJECTED, headers={"Retry-After": retry})
    if rule.code == 504:
        return StatusError(504, "Timeout: request did not complete within the allotted timeout")
    return StatusError(500, "Internal error occurred" + _INJECTED)


def gone(request: web.Request, current: int) -> StatusError:
    """The 410 a watch from a compacted version gets (here: the plan said so)."""
    asked = request.query.get("resourceVersion") or "0"
    return StatusError(410, f"too old resource version: {asked} ({current})" + _INJECTED, "Expired")
