"""A small async Kubernetes client: JSON over aiohttp, with the `kubernetes` package's
configuration (KUBECONFIG or in-cluster) for the address and credentials."""

from __future__ import annotations

import json
import os
import ssl
import time
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from typing import Any

import aiohttp
import kopf
import kubernetes

from bigmodel import __version__
from bigmodel.telemetry.export import OperatorMetrics

JSON = "application/json"
APPLY = "application/apply-patch+yaml"
USER_AGENT = f"bigmodel-operator/{__version__}"
"""Our requests' user agent: audit logs (and the sandbox's request log) tell them apart."""
_ALREADY_DELETED = (404, 409)
"""A delete's answers when the object is gone already (409: a newer one has its name)."""
EXPIRED = 410
"""A watch's answer when its resourceVersion is older than the history kept: list again."""
CONNECTIONS = 32
"""Requests in flight to the API server at most, per client (ours, and kopf's besides its
watches): more would cost memory the process keeps and a TLS handshake each, for nothing
the API server can serve faster."""
AUTH_REFRESH_SECONDS = 60.0
"""How long the `Authorization` header is reused before the configuration is asked again
(it may re-read a rotated token): asking on every request ran the `kubernetes` package's
refresh hook each time, 5% of the operator's CPU in a burst of new jobs."""
WATCH_CLIENT_TIMEOUT = 330.0
"""A watch stream that brings nothing for this long is given up (and resumed): the server
ends each watch after its `timeoutSeconds` (300) and sends bookmarks meanwhile, so a
silent stream has stalled (kopf's `client_timeout`, the same)."""
DISCOVERY_REFRESH_SECONDS = 60.0
"""Shortest pause between two discoveries of one apiVersion (a kind or API not found)."""


class ApiError(Exception):
    """A refused request: its HTTP status and the API's message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


API_FAILURES = (ApiError, aiohttp.ClientError, TimeoutError)
"""What a request to the API server may raise: a refusal, a connection failure, a timeout."""
RETRY_SECONDS = 5.0
"""Pause before a reconcile that failed on one of API_FAILURES is tried again."""


def api_root(api_version: str) -> str:
    """`/api/v1` for the core group, `/apis/<group>/<version>` for the others."""
    return "/api/v1" if api_version == "v1" else f"/apis/{api_version}"


def resource_path(
    api_version: str, plural: str, namespace: str | None = None, name: str | None = None
) -> str:
    """`/api/v1/namespaces/ns/pods/name` or `/apis/group/version/...` for any resource."""
    scope = f"/namespaces/{namespace}" if namespace else ""
    return f"{api_root(api_version)}{scope}/{plural}" + (f"/{name}" if name else "")


def load_client_config() -> Any:
    """KUBECONFIG's current context when the variable is set (client-go's precedence), else
    the in-cluster configuration of a pod, else ~/.kube/config."""
    config = kubernetes.client.Configuration()
    path = os.environ.get("KUBECONFIG")
    if not path:
        try:
            kubernetes.config.load_incluster_config(client_configuration=config)  # type: ignore[no-untyped-call]
        except kubernetes.config.ConfigException:
            pass
        else:
            return config
    kubernetes.config.load_kube_config(config_file=path, client_configuration=config)  # type: ignore[no-untyped-call]
    return config


def tls(config: Any) -> ssl.SSLContext | bool:
    """The TLS context of the client configuration's server (False for plain HTTP)."""
    if not config.host.startswith("https"):
        return False
    context = ssl.create_default_context(cafile=config.ssl_ca_cert)
    if config.cert_file:
        context.load_cert_chain(config.cert_file, config.key_file)
    if not config.verify_ssl:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def authorization(config: Any) -> dict[str, str]:
    """The `Authorization` header of the client configuration (none without a token)."""
    token = config.get_api_key_with_prefix("BearerToken", alias="authorization")
    return {"Authorization": token} if token else {}


def kopf_session(config: Any, watches: int) -> kopf.AiohttpSession:
    """kopf's own client: the same server and credentials as ours, with at most CONNECTIONS
    requests in flight besides its `watches` long-lived watch streams (kopf's built-in
    session has no limit: a burst of new jobs opened hundreds of connections at once).
    kopf adds its own User-Agent."""
    connector = aiohttp.TCPConnector(limit=CONNECTIONS + watches, ssl=tls(config))
    session = aiohttp.ClientSession(connector=connector, headers=authorization(config))
    return kopf.AiohttpSession(server=config.host, aiohttp_session=session)


class Kube:
    """JSON requests to the API server; one session, created on first use in the loop. Every
    failed request is counted in `metrics` (`bigmodel_api_errors_total`)."""

    def __init__(
        self,
        config: Any,
        metrics: OperatorMetrics | None = None,
        written: Callable[[Mapping[str, Any]], None] | None = None,
    ) -> None:
        self.client_config = config
        self.metrics = metrics
        self.written = written
        """Called with the object each status write returns (the health checks expect the
        watch to bring it back)."""
        self._session: aiohttp.ClientSession | None = None
        self._streams: aiohttp.ClientSession | None = None
        """The watch streams' session: one long-lived connection each, outside the
        CONNECTIONS that requests share (a watch would hold one of them for minutes)."""
        self._auth: tuple[float, dict[str, str]] | None = None
        """When the `Authorization` header was read, and the header."""
        self._discovered: dict[str, tuple[float, dict[str, str]]] = {}
        """Per apiVersion: when it was discovered, and the plural of each kind."""

    def _headers(self, content_type: str) -> dict[str, str]:
        now = time.monotonic()
        if self._auth is None or now - self._auth[0] > AUTH_REFRESH_SECONDS:
            self._auth = (now, authorization(self.client_config))
        headers = {"Content-Type": content_type, "Accept": JSON, "User-Agent": USER_AGENT}
        return headers | self._auth[1]

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        content_type: str = JSON,
        expected: Collection[int] = (),
    ) -> dict[str, Any]:
        """Send one request; a refusal raises ApiError with the API's message. A refusal
        whose status is `expected` (an outcome the caller handles, such as 409 for a
        create-if-absent) still raises, but is not counted as an error."""
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=60, connect=10)
            connector = aiohttp.TCPConnector(limit=CONNECTIONS, ssl=tls(self.client_config))
            self._session = aiohttp.ClientSession(timeout=timeout, connector=connector)
        data = None if body is None else json.dumps(body)
        try:
            async with self._session.request(
                method,
                self.client_config.host + path,
                data=data,
                params=params,
                headers=self._headers(content_type),
            ) as response:
                text = await response.text()
        except TimeoutError:  # before ClientError: aiohttp's timeouts are both
            self._count(method, "timeout")
            raise
        except aiohttp.ClientError:
            self._count(method, "connection")
            raise
        result: dict[str, Any] = json.loads(text) if text.startswith("{") else {}
        if response.status >= 400:
            if response.status not in expected:
                self._count(method, str(response.status))
            raise ApiError(response.status, str(result.get("message") or text[:200]))
        return result

    async def watch(self, path: str, params: Mapping[str, str]) -> AsyncIterator[dict[str, Any]]:
        """The events of a watch on the collection `path` (`params`: `resourceVersion`,
        `labelSelector`, ...), each `{"type": ..., "object": ...}` as the API sends it, until
        the server ends the stream; a refused watch raises ApiError. Counted as errors: a
        refusal other than `410 Gone` (an expired version, which the caller lists again
        for) and a failure to connect; a stream cut once it ran is a watch's ordinary end.
        Lines are split from the stream's chunks as they come, whatever their length
        (aiohttp's readline refuses lines over 128 KiB)."""
        if self._streams is None:
            timeout = aiohttp.ClientTimeout(
                total=None, sock_connect=10, sock_read=WATCH_CLIENT_TIMEOUT
            )
            connector = aiohttp.TCPConnector(limit=0, ssl=tls(self.client_config))
            self._streams = aiohttp.ClientSession(timeout=timeout, connector=connector)
        try:
            response = await self._streams.get(
                self.client_config.host + path,
                params={**params, "watch": "true"},
                headers=self._headers(JSON),
            )
        except TimeoutError:
            self._count("GET", "timeout")
            raise
        except aiohttp.ClientError:
            self._count("GET", "connection")
            raise
        try:
            if response.status >= 400:
                text = await response.text()
                if response.status != EXPIRED:
                    self._count("GET", str(response.status))
                result = json.loads(text) if text.startswith("{") else {}
                raise ApiError(response.status, str(result.get("message") or text[:200]))
            rest = b""
            async for chunk in response.content.iter_any():
                lines = (rest + chunk).split(b"\n")
                rest = lines.pop()
                for line in lines:
                    if line.strip():
                        yield json.loads(line)
        finally:
            response.release()

    def _count(self, method: str, code: str) -> None:
        if self.metrics is not None:
            self.metrics.count_api_error(method, code)

    async def create(self, obj: Mapping[str, Any]) -> bool:
        """Create `obj`; False when it already exists (created before, maybe by an earlier
        run of the operator)."""
        try:
            await self.request("POST", await self.path(obj, name=False), obj, expected=(409,))
        except ApiError as exc:
            if exc.status == 409:
                return False
            raise
        return True

    async def delete(
        self, obj: Mapping[str, Any], uid: str | None = None, background: bool = False
    ) -> None:
        """Delete `obj` (named by apiVersion, kind and metadata; only the one with `uid`, when
        given); gone is fine."""
        options: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if uid:
            options["preconditions"] = {"uid": uid}
        if background:
            options["propagationPolicy"] = "Background"
        try:
            await self.request("DELETE", await self.path(obj), options, expected=_ALREADY_DELETED)
        except ApiError as exc:
            if exc.status not in _ALREADY_DELETED:
                raise

    async def apply(self, obj: Mapping[str, Any], manager: str) -> dict[str, Any]:
        """Server-side apply of `obj` (created when absent) with the fields `manager` owns."""
        params = {"fieldManager": manager, "force": "true"}
        return await self.request("PATCH", await self.path(obj), obj, params, APPLY)

    async def apply_status(
        self, owner: Mapping[str, Any], status: Mapping[str, Any], manager: str
    ) -> dict[str, Any]:
        """Server-side apply of the `status` fields that `manager` owns, on the resource
        `owner` names (its apiVersion, kind, name and namespace)."""
        meta = owner["metadata"]
        obj = {
            "apiVersion": owner["apiVersion"],
            "kind": owner["kind"],
            "metadata": {"name": meta["name"], "namespace": meta.get("namespace")},
            "status": status,
        }
        params = {"fieldManager": manager, "force": "true"}
        result = await self.request("PATCH", await self.path(obj) + "/status", obj, params, APPLY)
        if self.written is not None:
            self.written(result)
        return result

    async def path(self, obj: Mapping[str, Any], name: bool = True) -> str:
        """Path of an object (or of its collection, with `name=False`) from its apiVersion,
        kind and metadata; the plural of the kind comes from discovery."""
        meta = obj["metadata"]
        plural = await self.plural(obj["apiVersion"], obj["kind"])
        return resource_path(
            obj["apiVersion"], plural, meta.get("namespace"), meta["name"] if name else None
        )

    async def plural(self, api_version: str, kind: str) -> str:
        """The resource name (plural) the API server serves `kind` of `api_version` as."""
        plurals = await self._discover(api_version)
        if kind not in plurals:  # installed since we last asked?
            plurals = await self._discover(api_version, refresh=True)
        if kind not in plurals:
            raise ApiError(404, f"the server does not serve {kind} in {api_version}")
        return plurals[kind]

    async def served(self, api_version: str, plural: str) -> bool:
        """Whether the API server serves `plural` in `api_version`."""
        if plural in (await self._discover(api_version)).values():
            return True
        return plural in (await self._discover(api_version, refresh=True)).values()

    async def _discover(self, api_version: str, refresh: bool = False) -> dict[str, str]:
        """Plural by kind of the top-level resources of `api_version`, from the API server's
        discovery document; fetched once, and again on `refresh` at most every
        `DISCOVERY_REFRESH_SECONDS`."""
        fetched = self._discovered.get(api_version)
        stale = fetched is None or (
            refresh and time.monotonic() - fetched[0] > DISCOVERY_REFRESH_SECONDS
        )
        if fetched is not None and not stale:
            return fetched[1]
        try:
            found = await self.request("GET", api_root(api_version), expected=(404,))
        except ApiError as exc:
            if exc.status != 404:
                raise
            found = {}
        plurals = {r["kind"]: r["name"] for r in found.get("resources", ()) if "/" not in r["name"]}
        self._discovered[api_version] = (time.monotonic(), plurals)
        return plurals

    async def close(self) -> None:
        """Close the sessions."""
        for session in (self._session, self._streams):
            if session is not None:
                await session.close()
