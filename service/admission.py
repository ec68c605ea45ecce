"""Admission control over the whole request path: a bound on requests in flight, a deadline per request, and a
bound on the bytes a request may send.

The bound is checked when the request line and headers have arrived, before the body is read, decoded or
searched for faces, so past capacity the answer is an immediate 503 with Retry-After instead of a queue that
grows in memory and latency. An admitted request carries its deadline (a context variable, which the threadpool
copies into the route's thread): the body must arrive before it, and the inference engine refuses to wait for
the model past it.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import math
import time
from collections.abc import Iterable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import error_body

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("dprime_request_deadline", default=None)


def remaining_s() -> float | None:
    """Seconds left before the current request's deadline (None outside an admitted request)."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()


class Admission:
    """How many requests are in flight, against a capacity. Used from the event loop thread only."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.in_flight = 0
        self.shed = 0

    def try_enter(self) -> bool:
        """Admit one more request, or refuse (and count the refusal) when at capacity."""
        if self.in_flight >= self.capacity:
            self.shed += 1
            return False
        self.in_flight += 1
        return True

    def leave(self) -> None:
        """An admitted request finished."""
        self.in_flight -= 1


class AdmissionMiddleware:
    """Pure ASGI middleware: shed past capacity, bound the body, start the deadline."""

    def __init__(
        self,
        app: ASGIApp,
        admission: Admission,
        deadline_s: float,
        max_body_bytes: int,
        retry_after_s: float,
        exempt_paths: Iterable[str],
    ) -> None:
        self.app = app
        self.admission = admission
        self.deadline_s = deadline_s
        self.max_body_bytes = max_body_bytes
        self.retry_after = str(max(1, math.ceil(retry_after_s)))
        self.exempt = frozenset(exempt_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_body_bytes:
            await self._too_large(int(length), send)
            return
        if not self.admission.try_enter():
            await self._overloaded(send)
            return
        deadline = time.monotonic() + self.deadline_s
        token = _deadline.set(deadline)
        try:
            await self.app(scope, self._bounded(receive, deadline), send)
        finally:
            _deadline.reset(token)
            self.admission.leave()

    def _bounded(self, receive: Receive, deadline: float) -> Receive:
        """receive() that stops a body past max_body_bytes (413) or still arriving at the deadline (408).

        Raised as HTTPException so that FastAPI's body parsing passes them on to the error handler.
        """
        received = 0

        async def bounded() -> Message:
            nonlocal received
            try:
                message = await asyncio.wait_for(receive(), timeout=max(deadline - time.monotonic(), 0.001))
            except TimeoutError:
                raise HTTPException(
                    408, f"the request body was still arriving after {self.deadline_s:g} s (DPRIME_REQUEST_DEADLINE_S)"
                ) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise HTTPException(
                        413, f"the request body is over {self.max_body_bytes} bytes; the limit is {self.max_body_bytes}"
                    )
            return message

        return bounded

    async def _overloaded(self, send: Send) -> None:
        a = self.admission
        payload = error_body(
            "overloaded",
            f"{a.in_flight} requests are in flight, the capacity (DPRIME_MAX_IN_FLIGHT) is {a.capacity}; "
            f"retry after {self.retry_after} s",
            {"in_flight": a.in_flight, "capacity": a.capacity},
        )
        await send_json(send, 503, payload, [(b"retry-after", self.retry_after.encode())])

    async def _too_large(self, length: int, send: Send) -> None:
        payload = error_body(
            "image_too_large",
            f"the request body is {length} bytes; the limit is {self.max_body_bytes} bytes",
            {"bytes": length, "max_bytes": self.max_body_bytes},
        )
        await send_json(send, 413, payload)


async def send_json(
    send: Send, status: int, payload: dict[str, object], extra_headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """Answer with a JSON body straight from ASGI (before or instead of the app)."""
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra_headers or [])})
    await send({"type": "http.response.body", "body": body})
