"""How the API renders errors: the catalogue's ServiceError (service.error_catalogue) and every other exception
become one JSON envelope with a stable code and the catalogue's HTTP status.

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

from facecore.errors import DprimeError
from service.error_catalogue import ServiceError, as_service_error

logger = logging.getLogger(__name__)


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
