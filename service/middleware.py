"""Per-request plumbing: an x-request-id on every response, one access-log line, and latency metrics."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import error_body

if TYPE_CHECKING:
    from service.state import AppState

logger = logging.getLogger("service.access")

_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


class RequestMiddleware:
    """Pure ASGI middleware (cheaper than BaseHTTPMiddleware on the hot path)."""

    def __init__(self, app: ASGIApp, state_of: Callable[[], AppState | None], max_body_bytes: int) -> None:
        self.app = app
        self._state_of = state_of
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _SAFE_ID.match(given) else uuid.uuid4().hex
        start = time.perf_counter()
        status = {"code": 500}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                status["started"] = 1
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            await self._too_large(int(length), send_with_id)
        else:
            try:
                await self.app(scope, receive, send_with_id)
            except Exception:
                # Answer here, inside the request-id wrapper, rather than let the server's outer handler send a
                # bare 500; the traceback goes to the log only.
                logger.exception("unhandled error on %s %s request_id=%s", scope["method"], scope["path"], request_id)
                if status["code"] == 500 and not status.get("started"):
                    await self._send_json(
                        send_with_id,
                        500,
                        error_body(
                            "internal_error", "internal error; see the server log with this request's x-request-id"
                        ),
                    )
        self._record(scope, request_id, status["code"], time.perf_counter() - start)

    async def _too_large(self, length: int, send: Send) -> None:
        await self._send_json(
            send,
            413,
            error_body(
                "image_too_large",
                f"the request body is {length} bytes; the limit is {self.max_body_bytes} bytes",
                {"bytes": length, "max_bytes": self.max_body_bytes},
            ),
        )

    @staticmethod
    async def _send_json(send: Send, status: int, payload: dict[str, object]) -> None:
        body = json.dumps(payload).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

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
        # Never log bodies, images or embeddings: route template, status, timing and model only.
        logger.info(
            "%s %s %d latency_ms=%.1f model_id=%s request_id=%s",
            scope["method"],
            path,
            status,
            seconds * 1000,
            model_id,
            request_id,
        )
