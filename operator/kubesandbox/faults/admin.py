"""The sandbox's admin routes, under `/sandbox/v1/` on its API server (admin token only):
the fault plan read and replaced at run time, and the kubelet's faults on demand.

    GET | PUT | DELETE  /sandbox/v1/faults                    the plan: {"seed", "rules"}
    POST  /sandbox/v1/namespaces/NS/pods/NAME/kill            {"childrenOnly": false}
    POST  /sandbox/v1/namespaces/NS/pods/NAME/evict           {"message": "..."}
    POST  /sandbox/v1/nodes/NAME/ready                        {"ready": false, "seconds": 10}

`faults.client.FaultClient` speaks them (the test helpers and `kubesandbox fault` use it).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiohttp import web

from kubesandbox.access import ClusterAccess
from kubesandbox.faults.plan import FaultPlan, Rule
from kubesandbox.kubelet.disruption import EVICTION_MESSAGE
from kubesandbox.kubelet.nodehost import NodeHost

PREFIX = "/sandbox/v1/"


def _answer(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status)


def _refused(status: int, message: str) -> web.Response:
    """A Status body, as the API's errors."""
    reason = {400: "BadRequest", 404: "NotFound", 405: "MethodNotAllowed"}[status]
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure"}
    return _answer({**body, "message": message, "reason": reason, "code": status}, status)


class Admin:
    """Serves the admin routes: the API's fault plan and the nodes' faults."""

    def __init__(self, plan: FaultPlan, nodes: NodeHost, api: ClusterAccess) -> None:
        self.plan, self.nodes, self.api = plan, nodes, api
        self._recoveries: dict[str, asyncio.Task[None]] = {}  # node -> its timed return

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Route one request under PREFIX."""
        parts = request.path.removeprefix(PREFIX).strip("/").split("/")
        try:
            sent = await request.json() if request.can_read_body else {}
        except ValueError as exc:
            return _refused(400, f"the body is not JSON: {exc}")
        if not isinstance(sent, dict):
            return _refused(400, "the body must be a JSON object")
        try:
            if parts == ["faults"]:
                return self._faults(request.method, sent)
            if request.method != "POST":
                return _refused(405, f"{request.method} is not allowed here: POST")
            if len(parts) == 5 and parts[0] == "namespaces" and parts[2] == "pods":
                return await self._pod(parts[1], parts[3], parts[4], sent)
            if len(parts) == 3 and parts[0] == "nodes" and parts[2] == "ready":
                return await self._ready(parts[1], sent)
        except ValueError as exc:
            return _refused(400, str(exc))
        return _refused(404, f"no admin route {request.path}")

    def _faults(self, method: str, sent: dict[str, Any]) -> web.Response:
        """The plan and its counts; PUT replaces it, DELETE clears it (answering with the
        counts it had)."""
        if method not in ("GET", "PUT", "DELETE"):
            return _refused(405, f"{method} is not allowed here: GET, PUT or DELETE")
        before = self.plan.to_json()
        if method == "PUT":
            rules = [Rule.from_json(r) for r in sent.get("rules") or ()]
            self.plan.set(rules, int(sent.get("seed", 0)))
        elif method == "DELETE":
            self.plan.set((), self.plan.seed)
        return _answer(before if method == "DELETE" else self.plan.to_json())

    async def _pod(self, ns: str, name: str, action: str, sent: dict[str, Any]) -> web.Response:
        """Kill the pod's processes, or evict it."""
        pod = self.api.get("pods", ns, name)
        if pod is None:
            return _refused(404, f'pods "{name}" not found in namespace {ns}')
        if action == "kill":
            killed = await self.nodes.kill(pod, bool(sent.get("childrenOnly")))
            self.plan.injected["kill"] += 1
            return _answer({"killed": killed})
        if action == "evict":
            await self.nodes.evict(pod, str(sent.get("message") or EVICTION_MESSAGE))
            self.plan.injected["evict"] += 1
            return _answer({"evicted": name})
        return _refused(404, f"no pod action {action!r}: kill or evict")

    async def _ready(self, node: str, sent: dict[str, Any]) -> web.Response:
        """Mark a node Ready or lost; lost for `seconds` (> 0), then Ready again."""
        if not any(n["metadata"]["name"] == node for n in self.nodes.node_objects()):
            return _refused(404, f'nodes "{node}" not found')
        ready, seconds = bool(sent.get("ready", False)), float(sent.get("seconds") or 0)
        recovery = self._recoveries.pop(node, None)
        if recovery is not None:
            recovery.cancel()
        evicted = await self.nodes.set_ready(node, ready)
        if not ready:
            self.plan.injected["node-not-ready"] += 1
            if seconds > 0:
                self._recoveries[node] = asyncio.create_task(self._recover(node, seconds))
        return _answer({"node": node, "ready": ready, "evicted": evicted})

    async def _recover(self, node: str, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self._recoveries.pop(node, None)
        await self.nodes.set_ready(node, True)

    async def close(self) -> None:
        """Cancel the nodes' timed returns."""
        for task in self._recoveries.values():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._recoveries.clear()
