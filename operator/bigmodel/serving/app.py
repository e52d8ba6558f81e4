"""The aiohttp application: both protocols' routes, `/metrics`, and one error middleware.

The middleware turns every refusal into the protocol's error body (OpenAI's under `/v1/`,
the Open Inference Protocol's elsewhere), including aiohttp's own 404, 405 and 413; counts
model requests by endpoint and code, their duration and rejections by reason; and tracks
requests in flight, which the drain waits for. An unexpected exception is logged and
answered 500 (a bug, never a client's fault).
"""

from __future__ import annotations

import logging
import time

from aiohttp import web
from aiohttp.typedefs import Handler

from bigmodel.serving import chat, inference_protocol, openai_compat
from bigmodel.serving.errors import RefusalReason, RequestRefused, oip_body, openai_body
from bigmodel.serving.metrics import CONTENT_TYPE, ENDPOINTS
from bigmodel.serving.state import STATE, ServerState

log = logging.getLogger(__name__)

_HTTP_REASONS = {
    404: RefusalReason.NOT_FOUND,
    405: RefusalReason.METHOD_NOT_ALLOWED,
    413: RefusalReason.TOO_LARGE,
}


def _as_api_error(request: web.Request, error: web.HTTPException) -> RequestRefused:
    """aiohttp's own refusals (no route, wrong method, body too large) as an ApiError."""
    reason = _HTTP_REASONS.get(error.status, RefusalReason.INVALID)
    message = f"{request.method} {request.path}: {error.reason}"
    if error.status == 404:
        message += " (endpoints: /v2, /v2/health/{live,ready}, /v2/models/{name}[/ready|/infer]"
        message += ", /v1/models, /v1/completions, /v1/chat/completions, /metrics)"
    elif error.status == 413:
        limit = request.app[STATE].config.max_body_bytes
        message = f"request body is above the limit of {limit} bytes"
    headers = {"Allow": error.headers["Allow"]} if "Allow" in error.headers else {}
    return RequestRefused(error.status, message, reason=reason, headers=headers)


def _render(request: web.Request, error: RequestRefused) -> web.Response:
    body = openai_body(error) if request.path.startswith("/v1/") else oip_body(error)
    return web.json_response(body, status=error.status, headers=error.headers)


@web.middleware
async def handle_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Protocol error bodies, request metrics, in-flight tracking (see the module doc)."""
    state = request.app[STATE]
    endpoint = request.match_info.route.name
    counted = endpoint in ENDPOINTS
    if counted:
        state.started()
    started = time.perf_counter()
    try:
        response = await handler(request)
    except RequestRefused as error:
        response = _render(request, error)
        state.metrics.rejected(error.reason)
    except web.HTTPException as http_error:
        if http_error.status < 400:
            raise
        refusal = _as_api_error(request, http_error)
        response = _render(request, refusal)
        state.metrics.rejected(refusal.reason)
    except Exception:
        log.exception("unexpected error", extra={"fields": {"path": request.path}})
        response = _render(
            request, RequestRefused(500, "internal server error", reason=RefusalReason.INTERNAL)
        )
        state.metrics.rejected(RefusalReason.INTERNAL)
    finally:
        if counted:
            state.finished()
    if counted and endpoint is not None:
        state.metrics.answered(endpoint, response.status, time.perf_counter() - started)
    return response


async def metrics(request: web.Request) -> web.Response:
    """`GET /metrics`: the Prometheus text exposition."""
    body = request.app[STATE].metrics.render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


def build_app(state: ServerState) -> web.Application:
    """The application serving `state` (its model may still be loading)."""
    app = web.Application(middlewares=[handle_errors], client_max_size=state.config.max_body_bytes)
    app[STATE] = state
    inference_protocol.add_routes(app)
    openai_compat.add_routes(app)
    chat.add_routes(app)
    app.router.add_get("/metrics", metrics)
    return app
