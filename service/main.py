"""The app factories. Servers run `uvicorn --factory service.main:serve_app` (settings from the environment, logging
as they say); tests call create_app(settings)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from facecore.logs import setup_logging
from service.admission import Admission, AdmissionMiddleware
from service.config import Settings, load_settings
from service.errors import register_exception_handlers
from service.lifespan import make_lifespan
from service.middleware import RequestMiddleware
from service.openapi import install_schema, service_patches
from service.routes import (
    apidocs,
    audit,
    calibration,
    collections,
    console,
    embed,
    health,
    identities,
    keys,
    model_report,
    models,
    search,
    verify,
)
from service.state import AppState

_UPLOAD_OVERHEAD = 1024 * 1024  # multipart framing and form fields around the images
# Monitoring must see the service even when it sheds load: these routes do no face work and are never refused.
_NEVER_SHED = ("/health", "/ready", "/metrics")


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the FastAPI app; the model, detector and gallery load in the lifespan, not here."""
    settings = settings or load_settings()
    admission = Admission(settings.max_in_flight)
    app = FastAPI(
        title="dprime",
        summary="Face verification with d'-calibrated decisions and per-image vMF certainty",
        version="0.1.0",
        lifespan=make_lifespan(settings, admission),
        # /docs and /redoc are served from the package's own assets (routes.apidocs), not FastAPI's CDN pages.
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.expose_docs else None,
    )
    register_exception_handlers(app)
    for module in (
        health,
        keys,
        embed,
        verify,
        search,
        identities,
        collections,
        models,
        model_report,
        calibration,
        audit,
    ):
        app.include_router(module.router)
    if settings.expose_docs and app.openapi_url:
        apidocs.install(app, app.openapi_url)
    if settings.console:
        console.install(app)

    def state_of() -> AppState | None:
        state: AppState | None = getattr(app.state, "dprime", None)
        return state

    install_schema(app, lambda: service_patches(settings, state_of()))
    max_body = settings.max_image_bytes * settings.max_images_per_request + _UPLOAD_OVERHEAD
    # Added innermost first: CORS (when configured) answers preflights outside admission; the request middleware
    # is outermost so that shed and refused requests get an id, security headers and a log line too.
    app.add_middleware(
        AdmissionMiddleware,
        admission=admission,
        deadline_s=settings.request_deadline_s,
        max_body_bytes=max_body,
        retry_after_s=settings.overload_retry_after_s,
        exempt_paths=_NEVER_SHED,
    )
    if settings.cors_origin_list:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["X-API-Key", "Authorization", "Content-Type", "X-Request-Id"],
            expose_headers=["X-Request-Id", "Retry-After", "X-Dprime-Model"],
        )
    app.add_middleware(RequestMiddleware, state_of=state_of)
    return app


def serve_app() -> FastAPI:
    """The ASGI server's entry point: settings from the environment, log lines at their level and in their format
    (one JSON object a line by default, the access line included), then the app. Cheap: the heavy loading waits
    for the lifespan."""
    settings = load_settings()
    setup_logging(settings.log_level, json_lines=settings.log_format == "json")
    return create_app(settings)
