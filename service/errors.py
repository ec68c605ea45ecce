"""The error catalogue: every error the API returns, its stable code and HTTP status, mapped in one place.

Responses look like ``{"error": {"code", "message", "details"}}``; no stack trace ever reaches a client.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import Scope

from facecore.errors import AlignmentError, DprimeError, ManifestError, RegistryError
from facepipe.errors import FacepipeError

logger = logging.getLogger(__name__)

# code -> HTTP status. The codes are part of the API: add, never rename.
CATALOGUE: dict[str, int] = {
    "bad_image": 400,
    "bad_request": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "collection_forbidden": 403,
    "unknown_identity": 404,
    "unknown_collection": 404,
    "unknown_model": 404,
    "unknown_job": 404,
    "not_found": 404,
    "method_not_allowed": 405,
    "request_timeout": 408,
    "model_not_calibrated": 409,
    "model_switch_in_progress": 409,
    "calibration_unresolved": 409,
    "image_too_large": 413,
    "validation_error": 422,
    "no_face": 422,
    "multiple_faces": 422,
    "no_usable_faces": 422,
    "alignment_failed": 422,
    "model_load_failed": 422,
    "too_many_failed_keys": 429,
    "provider_unavailable": 503,
    "model_not_ready": 503,
    "overloaded": 503,
    "deadline_exceeded": 503,
    "internal_error": 500,
}


class ServiceError(DprimeError):
    """An error with a catalogue code; raise it anywhere, the handler renders it."""

    def __init__(
        self, code: str, message: str, details: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> None:
        if code not in CATALOGUE:
            raise ValueError(f"error code {code!r} is not in the catalogue")
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}
        self.headers = headers

    @property
    def status(self) -> int:
        """HTTP status of this code."""
        return CATALOGUE[self.code]


def as_service_error(exc: Exception) -> ServiceError:
    """Map a domain error from facepipe/facecore to its catalogue entry."""
    if isinstance(exc, ServiceError):
        return exc
    if isinstance(exc, FacepipeError):
        return ServiceError(exc.code, exc.message, exc.details)
    if isinstance(exc, AlignmentError):
        return ServiceError("alignment_failed", str(exc))
    if isinstance(exc, RegistryError):
        return ServiceError("unknown_model", str(exc))
    if isinstance(exc, ManifestError):
        return ServiceError("model_load_failed", str(exc))
    return ServiceError("internal_error", "internal error; see the server log with this request's x-request-id")


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON error envelope."""
    return {"error": {"code": code, "message": message, "details": details or {}}}


def _render(err: ServiceError) -> JSONResponse:
    return JSONResponse(error_body(err.code, err.message, err.details), status_code=err.status, headers=err.headers)


# Statuses Starlette or the admission middleware raise as HTTPException, and the catalogue code each becomes.
_HTTP_CODES = {408: "request_timeout", 413: "image_too_large"}


def _leaf_routes(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(prefix, route) of every route, looking into included routers (FastAPI keeps them as wrappers)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            context = getattr(route, "include_context", None)
            yield from _leaf_routes(inner.routes, prefix + (getattr(context, "prefix", "") or ""))
        else:
            yield prefix, route


def allowed_methods(app: FastAPI, scope: Scope) -> list[str]:
    """Every method some route serves at the scope's path (routes of one path may be declared apart)."""
    methods: set[str] = set()
    path: str = scope["path"]
    for prefix, route in _leaf_routes(app.router.routes):
        if not path.startswith(prefix) or not hasattr(route, "matches"):
            continue
        match, _ = route.matches({**scope, "path": path[len(prefix) :], "method": "GET"})
        if match != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


def register_exception_handlers(app: FastAPI) -> None:
    """Route every exception to the envelope: domain errors by code, validation errors as 422, the rest 500."""

    @app.exception_handler(DprimeError)
    async def _domain(request: Request, exc: DprimeError) -> JSONResponse:
        err = as_service_error(exc)
        if err.code == "internal_error":
            logger.exception("unmapped domain error on %s", request.url.path, exc_info=exc)
        return _render(err)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"field": ".".join(str(p) for p in e.get("loc", ()) if p != "body"), "problem": e.get("msg", "")}
            for e in exc.errors()
        ]
        summary = "; ".join(f"{p['field']}: {p['problem']}" for p in problems)
        return _render(ServiceError("validation_error", f"invalid request: {summary}", {"problems": problems}))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 405:
            allowed = allowed_methods(app, request.scope)
            message = f"{request.method} is not allowed on {request.url.path}; allowed: {', '.join(allowed)}"
            return _render(ServiceError("method_not_allowed", message, headers={"Allow": ", ".join(allowed)}))
        if exc.status_code == 404:
            return _render(ServiceError("not_found", f"no route {request.method} {request.url.path}"))
        code = _HTTP_CODES.get(exc.status_code, "bad_request")
        return _render(ServiceError(code, str(exc.detail), headers=dict(exc.headers) if exc.headers else None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return _render(as_service_error(exc))
