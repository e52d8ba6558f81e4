"""Lifecycle hooks as the kubelet runs them: a container's `preStop` (sleep, exec, httpGet or
tcpSocket) runs before it gets SIGTERM, within the pod's termination grace period."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from kubesandbox.objects import Obj

HANDLERS = ("exec", "httpGet", "tcpSocket")


async def pre_stop(
    container: Obj, attempt: Callable[[Obj], Awaitable[bool]], budget: float
) -> None:
    """Run the container's preStop hook, for at most `budget` seconds; a failed hook does
    not hold the stop back (the kubelet only records it)."""
    hook = (container.get("lifecycle") or {}).get("preStop") or {}
    if budget <= 0:
        return
    if "sleep" in hook:
        await asyncio.sleep(min(float(hook["sleep"].get("seconds", 0)), budget))
    elif any(handler in hook for handler in HANDLERS):
        await attempt({**hook, "timeoutSeconds": budget})
