"""Per-request plumbing: an x-request-id on every response, security headers, one access-log line, and latency
metrics.

The access line carries request id, method, route template, status, latency, key name and model id as fields
(rendered as one JSON object per line by service.logs); never a body, an image or an embedding.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.admission import send_json
from service.errors import error_body

if TYPE_CHECKING:
    from service.state import AppState

logger = logging.getLogger("service.access")

_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")

# Sent on every response. The API answers JSON only: nothing may frame it, sniff it into HTML or cache it (the
# bodies hold names and biometric facts). Pages that need their own policy (the console, /docs) set
# Content-Security-Policy themselves; the default below applies only where none was set.
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
)
_DEFAULT_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
_NO_STORE = (b"cache-control", b"no-store")
_HSTS = (b"strict-transport-security", b"max-age=31536000")


def _with_security_headers(scope: Scope, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    names = {k.lower() for k, _ in headers}
    out = [*headers, *(h for h in SECURITY_HEADERS if h[0] not in names)]
    content_type = next((v for k, v in headers if k.lower() == b"content-type"), b"")
    if b"content-security-policy" not in names and not content_type.startswith(b"text/html"):
        out.append(_DEFAULT_CSP)
    if b"cache-control" not in names and scope["path"].startswith("/v1/"):
        out.append(_NO_STORE)
    if scope.get("scheme") == "https":
        out.append(_HSTS)
    return out


# The response header naming the model that served the request.
MODEL_HEADER = b"x-dprime-model"


class RequestMiddleware:
    """Pure ASGI middleware (cheaper than BaseHTTPMiddleware on the hot path); the outermost layer."""

    def __init__(self, app: ASGIApp, state_of: Callable[[], AppState | None]) -> None:
        self.app = app
        self._state_of = state_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _SAFE_ID.match(given) else uuid.uuid4().hex
        # Routes read it as request.state.request_id (the audit trail) and leave the key name there for the log.
        request_state = scope.setdefault("state", {})
        request_state["request_id"] = request_id
        start = time.perf_counter()
        status = {"code": 500, "started": 0}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                status["started"] = 1
                extra = [(b"x-request-id", request_id.encode())]
                # Which model answered: behind a proxy over several replicas, during a switch, this tells them apart.
                state = self._state_of()
                runtime = state.runtime if state is not None else None
                if runtime is not None:
                    extra.append((MODEL_HEADER, runtime.model_id.encode("latin-1", "replace")))
                message["headers"] = _with_security_headers(scope, [*message.get("headers", []), *extra])
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # Answer here, inside the request-id wrapper, rather than let the server's outer handler send a
            # bare 500; the traceback goes to the log only.
            logger.exception("unhandled error on %s %s request_id=%s", scope["method"], scope["path"], request_id)
            if not status["started"]:
                message = "internal error; see the server log with this request's x-request-id"
                await send_json(send_with_id, 500, error_body("internal_error", message))
        self._record(scope, request_id, status["code"], time.perf_counter() - start)

    def _record(self, scope: Scope, request_id: str, status: int, seconds: float) -> None:
        route = scope.get("route")
        path = getattr(route, "path", None) or "unmatched"
        state = self._state_of()
        model_id = None
        if state is not None:
            state.metrics.request_latency.labels(route=path, method=scope["method"], status=str(status)).observe(
                seconds
            )
            model_id = state.runtime.model_id if state.runtime else None
        key_name = scope.get("state", {}).get("key_name")
        fields = {
            "request_id": request_id,
            "method": scope["method"],
            "route": path,
            "status": status,
            "latency_ms": round(seconds * 1000, 1),
            "key_name": key_name,
            "model_id": model_id,
        }
        # Never bodies, images or embeddings: the route template, status, timing, who, and which model.
        logger.info(
            "%s %s %d latency_ms=%.1f key=%s model_id=%s request_id=%s",
            scope["method"],
            path,
            status,
            seconds * 1000,
            key_name,
            model_id,
            request_id,
            extra={"fields": fields},
        )
