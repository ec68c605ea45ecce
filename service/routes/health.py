"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from service.deps import ReadKey, StateDep
from service.openapi import error_responses
from service.schemas import Health, Ready

router = APIRouter(tags=["operations"])

_METRICS_MEDIA_TYPE = CONTENT_TYPE_LATEST.split(";")[0]


@router.get("/health", response_model=Health)
def health() -> Health:
    """The process is up (no key needed)."""
    return Health(status="ok")


@router.get("/ready", response_model=Ready, responses={503: {"model": Ready, "description": "not ready, and why"}})
def ready(state: StateDep) -> JSONResponse:
    """200 when a model and the gallery are loaded and warm, else 503 with the reason (no key needed)."""
    runtime = state.runtime
    body = Ready(
        ready=state.ready,
        model_id=runtime.model_id if runtime else None,
        reason=None if state.ready else state.not_ready_reason,
        providers=runtime.embedder.providers_in_use if runtime else [],
        gallery_faces=state.gallery.index.size if state.gallery.index else 0,
    )
    return JSONResponse(body.model_dump(), status_code=200 if state.ready else 503)


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "description": f"Prometheus text exposition ({CONTENT_TYPE_LATEST})",
            "content": {_METRICS_MEDIA_TYPE: {"schema": {"type": "string"}}},
        },
        **error_responses(401, 429),
    },
)
def metrics(state: StateDep, _: ReadKey) -> Response:
    """Prometheus text exposition (send the key as X-API-Key or as a Bearer token)."""
    if state.runtime is not None:
        state.metrics.queue_depth.set(state.runtime.engine.depth)
    state.metrics.in_flight.set(state.admission.in_flight)
    state.metrics.shed.set(state.admission.shed)
    return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
