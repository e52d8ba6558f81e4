"""The base of the built-in controllers: watch events consumed one at a time, and writes that
change only what differs; plus the pod and owner helpers they share."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging

from kubesandbox.access import ControllerAccess, Rejected
from kubesandbox.objects import Obj

log = logging.getLogger(__name__)


def is_active(pod: Obj) -> bool:
    """A pod that is neither finished nor being deleted."""
    finished = (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
    return not finished and not pod["metadata"].get("deletionTimestamp")


def is_ready(pod: Obj) -> bool:
    """A pod whose Ready condition is True."""
    return any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in (pod.get("status") or {}).get("conditions", ())
    )


def controller_of(obj: Obj, kind: str) -> str | None:
    """The uid of an object's controller of the given kind."""
    for ref in obj["metadata"].get("ownerReferences") or ():
        if ref.get("controller") and ref.get("kind") == kind:
            return str(ref["uid"])
    return None


def owner_reference(owner: Obj) -> Obj:
    """A controller ownerReference to `owner`."""
    meta = owner["metadata"]
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


Timer = tuple[str, str, str]  # (resource, namespace, name) of the object to look at again


class Controller(abc.ABC):
    """Consumes the watch events of some resources, one at a time, on the sandbox's loop, and
    looks at an object again when a timer it set runs out."""

    user_agent = "sandbox-controller"

    def __init__(self, api: ControllerAccess, watched: list[str]) -> None:
        self.api = api
        self.watched = watched
        self._tasks: list[asyncio.Task[None]] = []
        self._timers: dict[Timer, asyncio.TimerHandle] = {}
        self._woken: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        """Start consuming events."""
        self._tasks = [asyncio.create_task(self._consume(key)) for key in self.watched]

    async def stop(self) -> None:
        """Stop consuming events and drop the timers."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        tasks = [*self._tasks, *self._woken]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _consume(self, key: str) -> None:
        async for kind, obj in self.api.watch(key):
            await self._dispatch(key, kind, obj)

    async def _dispatch(self, key: str, kind: str, obj: Obj) -> None:
        try:
            await self.handle(key, kind, obj)
        except Rejected as exc:  # a conflict or a vanished object: the next event retries
            log.debug("%s: %s", type(self).__name__, exc)
        except Exception:  # one malformed object must not stop the controller
            meta = obj.get("metadata", {})
            log.exception(
                "%s failed on %s/%s",
                type(self).__name__,
                meta.get("namespace"),
                meta.get("name"),
            )

    def wake(self, delay: float, resource: str, namespace: str, name: str) -> None:
        """Handle the object again (as MODIFIED) in `delay` seconds; a later call for the
        same object replaces the pending one."""
        timer = (resource, namespace, name)
        if (pending := self._timers.pop(timer, None)) is not None:
            pending.cancel()
        loop = asyncio.get_running_loop()
        self._timers[timer] = loop.call_later(max(0.0, delay), self._ring, timer)

    def _ring(self, timer: Timer) -> None:
        self._timers.pop(timer, None)
        obj = self.api.get(*timer)
        if obj is not None:
            task = asyncio.create_task(self._dispatch(timer[0], "MODIFIED", obj))
            self._woken.add(task)
            task.add_done_callback(self._woken.discard)

    @abc.abstractmethod
    async def handle(self, key: str, kind: str, obj: Obj) -> None:
        """React to one event (ADDED, MODIFIED, DELETED) of resource `key`."""

    def write(self, resource: str, obj: Obj, status: Obj | None = None) -> Obj:
        """Create `obj`, or replace it (and then its status when given) when it changed."""
        meta = obj["metadata"]
        ns, name = meta.get("namespace", ""), meta["name"]
        live = self.api.get(resource, ns, name)
        if live is None:
            live = self.api.create(resource, ns, obj, self.user_agent)
        elif any(live.get(k) != v for k, v in obj.items() if k not in ("metadata", "status")):
            body = {**live, **{k: v for k, v in obj.items() if k != "metadata"}}
            live = self.api.update(resource, ns, name, body, self.user_agent)
        if status is not None and live.get("status") != status:
            body = {"metadata": {"name": name}, "status": status}
            live = self.api.update(resource, ns, name, body, self.user_agent, status=True)
        return live
