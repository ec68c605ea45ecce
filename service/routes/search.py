"""POST /v1/search: open-set 1:N identification that keeps a stated FPIR for the gallery's size."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile

from facecore.decision import decide_search, hit_decision, pair_quality
from service.decisions import active_decision_set, decision_rule
from service.deps import ReadKey, StateDep
from service.error_catalogue import ServiceError
from service.openapi import UPLOAD, read_errors
from service.responses import band_out, calibration_ref, face_quality
from service.routes.forms import CollectionForm, OperatingPointForm, PolicyForm, read_upload
from service.schemas import FpirOut, SearchHit, SearchResponse, Thresholds

router = APIRouter(prefix="/v1", tags=["decisions"])


@router.post("/search", response_model=SearchResponse, responses=read_errors(*UPLOAD, 403, 409))
def search(
    state: StateDep,
    principal: ReadKey,
    image: Annotated[UploadFile, File(description="the probe photo")],
    k: Annotated[int, Form(ge=1, description="how many candidate identities to return")] = 5,
    operating_point: OperatingPointForm = None,
    multiple_faces: PolicyForm = None,
    collection: CollectionForm = None,
) -> SearchResponse:
    """The k most similar enrolled identities (of one collection, or of every collection the key reaches) and an
    open-set decision: match, unknown or uncertain."""
    scope = principal.scope(collection)
    if k > state.settings.search_max_k:
        raise ServiceError("validation_error", f"k={k} is above the limit of {state.settings.search_max_k}")
    policy = multiple_faces or state.settings.multiple_faces
    runtime = state.active_runtime()
    decision_set = active_decision_set(runtime.manifest, state.calibrations)
    rule = decision_rule(decision_set, operating_point or state.settings.operating_point)
    ident = decision_set.identification
    if ident is None:
        raise ServiceError(
            "model_not_calibrated",
            f"calibration {decision_set.id!r} has no identification thresholds; recalibrate on a labelled gallery",
        )
    face = state.pipeline.embed_image(read_upload(image, state.settings.max_image_bytes), runtime, policy)[0]
    with state.pipeline.stage("search"):
        hits = state.gallery.search(face.mu, k, runtime, scope)
    # The FPIR is kept for the gallery the search saw: the collections in scope.
    n_faces = state.gallery.index.size_of(scope) if state.gallery.index else 0
    best = hits[0] if hits else None
    best_kappa = state.gallery.store.face_kappa(best.face_id, runtime.model_id) if best else face.kappa
    quality = pair_quality(face.kappa, best_kappa if best_kappa is not None else face.kappa)
    verdict = decide_search(best.cosine if best else None, quality, n_faces, rule, ident)
    out = [
        SearchHit(
            identity_id=h.identity_id,
            name=h.name,
            face_id=h.face_id,
            cosine=h.cosine,
            decision=hit_decision(h.cosine, verdict.accept, verdict.reject),
        )
        for h in hits
    ]
    state.metrics.decisions.labels(kind="search", outcome=verdict.result, band=verdict.band.name).inc()
    return SearchResponse(
        result=verdict.result,
        hits=out,
        threshold=verdict.accept,
        thresholds=Thresholds(accept=verdict.accept, reject=verdict.reject),
        fpir=FpirOut(
            target=ident.target_fpir,
            fpir=verdict.point.fpir,
            gallery_size=n_faces,
            calibrated_gallery_size=verdict.point.gallery_size,
            resolvable=verdict.resolved,
        ),
        rank1_hit_rate=verdict.point.rank1_hit_rate,
        band=band_out(verdict.band, rule, quality),
        reason=verdict.reason,
        calibration=calibration_ref(decision_set),
        query_face=face_quality(face, runtime.manifest),
        gallery_faces=n_faces,
        model_id=runtime.model_id,
    )
