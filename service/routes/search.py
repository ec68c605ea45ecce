"""POST /v1/search: 1:N identification with a calibrated decision for every candidate."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile

from service.decisions import decide, face_quality, is_low_quality, operating_point_out
from service.deps import ReadKey, StateDep
from service.errors import ServiceError
from service.routes.forms import OperatingPointForm, PolicyForm, read_upload
from service.schemas import SearchHit, SearchResponse

router = APIRouter(prefix="/v1", tags=["decisions"])


@router.post("/search", response_model=SearchResponse)
def search(
    state: StateDep,
    _: ReadKey,
    image: Annotated[UploadFile, File(description="the probe photo")],
    k: Annotated[int, Form(ge=1, description="how many candidate identities to return")] = 5,
    operating_point: OperatingPointForm = None,
    multiple_faces: PolicyForm = None,
) -> SearchResponse:
    """The k most similar enrolled identities; 'unknown' when none clears the calibrated threshold."""
    if k > state.settings.search_max_k:
        raise ServiceError("validation_error", f"k={k} is above the limit of {state.settings.search_max_k}")
    policy = multiple_faces or state.settings.multiple_faces
    if policy == "all":
        raise ServiceError("validation_error", "multiple_faces=all is not allowed for search: one probe face")
    runtime = state.active_runtime()
    manifest = runtime.manifest
    point = runtime.operating_point(operating_point or state.settings.operating_point)
    face = state.pipeline.embed_image(read_upload(image, state.settings.max_image_bytes), runtime, policy)[0]
    with state.pipeline.stage("search"):
        hits = state.gallery.search(face.mu, k)
    # A stored face below kappa_min was refused at enrollment, so only the probe's certainty can make it uncertain.
    out = [
        SearchHit(
            identity_id=h.identity_id,
            name=h.name,
            face_id=h.face_id,
            cosine=h.cosine,
            decision=decide(h.cosine, [face.kappa], manifest, point),
        )
        for h in hits
    ]
    if is_low_quality(face.kappa, manifest):
        result = "uncertain"
    else:
        result = "match" if out and out[0].decision == "match" else "unknown"
    state.metrics.decisions.labels(kind="search", outcome=result).inc()
    n_faces = state.gallery.index.size if state.gallery.index else 0
    return SearchResponse(
        result=result,
        hits=out,
        threshold=point.threshold,
        operating_point=operating_point_out(point, manifest),
        query_face=face_quality(face, manifest),
        gallery_faces=n_faces,
        expected_false_matches=n_faces * point.far,
        model_id=runtime.model_id,
    )
