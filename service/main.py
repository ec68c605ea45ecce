"""The app factory. `uvicorn service.main:app` serves the module-level app; tests call create_app(settings)."""

from __future__ import annotations

from fastapi import FastAPI

from service.config import Settings, load_settings
from service.errors import register_exception_handlers
from service.lifespan import make_lifespan
from service.middleware import RequestMiddleware
from service.routes import (
    apidocs,
    calibration,
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


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the FastAPI app; the model, detector and gallery load in the lifespan, not here."""
    settings = settings or load_settings()
    app = FastAPI(
        title="dprime",
        summary="Face verification with d'-calibrated decisions and per-image vMF certainty",
        version="0.1.0",
        lifespan=make_lifespan(settings),
        # /docs and /redoc are served from the package's own assets (routes.apidocs), not FastAPI's CDN pages.
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.expose_docs else None,
    )
    register_exception_handlers(app)
    for module in (health, keys, embed, verify, search, identities, models, model_report, calibration):
        app.include_router(module.router)
    if settings.expose_docs and app.openapi_url:
        apidocs.install(app, app.openapi_url)
    if settings.console:
        console.install(app)

    def state_of() -> AppState | None:
        state: AppState | None = getattr(app.state, "dprime", None)
        return state

    max_body = settings.max_image_bytes * settings.max_images_per_request + _UPLOAD_OVERHEAD
    app.add_middleware(RequestMiddleware, state_of=state_of, max_body_bytes=max_body)
    return app


# The ASGI server's entry point. Cheap: settings are read and validated, the heavy loading waits for the lifespan.
app = create_app()
