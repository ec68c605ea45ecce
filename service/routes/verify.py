"""POST /v1/verify: one three-way 1:1 decision (two images, or an image and an enrolled identity)."""

from __future__ import annotations

from typing import Annotated

import numpy as np
from fastapi import APIRouter, File, Form, UploadFile

from facecore.decision import best_of_n, decide, pair_quality
from facecore.decision_records import DecisionRecord, DecisionSet
from facecore.errors import DprimeError
from facecore.vmf import expected_cosine, log_expected_likelihood
from service.decisions import active_decision_set, decision_rule
from service.deps import ReadKey, StateDep
from service.error_catalogue import ServiceError
from service.openapi import UPLOAD, read_errors
from service.pipeline import EmbeddedFace, FacePolicy
from service.responses import band_out, calibration_ref, face_quality, rule_point, thresholds
from service.routes.forms import OperatingPointForm, OptionalImage, PolicyForm, optional, read_upload
from service.runtime import ModelRuntime
from service.schemas import IdentityRef, VerifyResponse
from service.state import AppState

router = APIRouter(prefix="/v1", tags=["decisions"])


@router.post("/verify", response_model=VerifyResponse, responses=read_errors(*UPLOAD, 403, 404, 409))
def verify(
    state: StateDep,
    principal: ReadKey,
    image_a: Annotated[UploadFile, File(description="the probe photo")],
    image_b: OptionalImage = None,
    identity_id: Annotated[
        str | None, optional({"type": "string"}), Form(description="compare with this enrolled identity instead")
    ] = None,
    operating_point: OperatingPointForm = None,
    multiple_faces: PolicyForm = None,
) -> VerifyResponse:
    """Same person, different people, or uncertain, with the promise each answer keeps."""
    policy = multiple_faces or state.settings.multiple_faces
    runtime = state.active_runtime()
    decision_set = active_decision_set(runtime.manifest, state.calibrations)
    rule = decision_rule(decision_set, operating_point or state.settings.operating_point)
    probe = read_upload(image_a, state.settings.max_image_bytes)
    ref = None
    if image_b is not None and identity_id is None:
        a, b = _embed_pair(state, runtime, probe, read_upload(image_b, state.settings.max_image_bytes), policy)
    elif identity_id is not None and image_b is None:
        row = state.gallery.store.get_identity(identity_id)
        if row is not None:
            principal.check(row.collection)  # a key sees only its collections' identities
        a = state.pipeline.embed_image(probe, runtime, policy)[0]
        b, ref = _best_enrolled_face(state, runtime, a, identity_id, rule)
    else:
        raise ServiceError("validation_error", "send exactly one of image_b or identity_id with image_a")
    return _respond(state, runtime, decision_set, rule, a, b, ref)


def _respond(
    state: AppState,
    runtime: ModelRuntime,
    decision_set: DecisionSet,
    rule: DecisionRecord,
    a: EmbeddedFace,
    b: EmbeddedFace,
    ref: IdentityRef | None,
) -> VerifyResponse:
    cosine = float(np.dot(a.mu, b.mu))
    quality = pair_quality(a.kappa, b.kappa)
    verdict = decide(cosine, quality, rule)
    state.metrics.decisions.labels(kind="verify", outcome=verdict.decision, band=verdict.band.name).inc()
    state.metrics.score.observe(cosine)
    manifest = runtime.manifest
    dim = manifest.embedding_dim
    return VerifyResponse(
        decision=verdict.decision,
        cosine=cosine,
        threshold=verdict.accept,
        thresholds=thresholds(verdict),
        band=band_out(verdict.band, rule, quality),
        pair_quality=quality,
        log10_lr=verdict.log10_lr,
        reason=verdict.reason,
        calibration=calibration_ref(decision_set),
        operating_point=rule_point(rule, decision_set),
        faces=[face_quality(a, manifest), face_quality(b, manifest)],
        expected_cosine=float(expected_cosine(cosine, a.kappa, b.kappa, dim)),
        log_expected_likelihood=float(log_expected_likelihood(cosine, a.kappa, b.kappa, dim)),
        identity=ref,
        model_id=runtime.model_id,
    )


def _embed_pair(
    state: AppState, runtime: ModelRuntime, probe: bytes, other: bytes, policy: FacePolicy
) -> tuple[EmbeddedFace, EmbeddedFace]:
    """Both images' faces in one model batch."""
    faces = []
    for result in state.pipeline.embed_images([probe, other], runtime, policy):
        if isinstance(result, DprimeError):
            raise result
        faces.append(result[0])
    return faces[0], faces[1]


def _best_enrolled_face(
    state: AppState, runtime: ModelRuntime, probe: EmbeddedFace, identity_id: str, rule: DecisionRecord
) -> tuple[EmbeddedFace, IdentityRef]:
    """The identity's face most similar to the probe, and the FAR bound of answering with the best of its faces."""
    vs = state.gallery.identity_vectors(identity_id, runtime)
    if vs.face_ids.size == 0:
        raise ServiceError("unknown_identity", f"identity {identity_id!r} has no faces to compare with")
    best = best_of_n(probe.mu, vs.vectors, rule.target_far)
    row = state.gallery.store.get_identity(identity_id)
    ref = IdentityRef(
        id=identity_id,
        name=row.name if row else "",
        faces_compared=int(vs.face_ids.size),
        best_face_id=int(vs.face_ids[best.index]),
        far_bound=best.far_bound,
    )
    stored = EmbeddedFace(
        mu=vs.vectors[best.index].astype(np.float64), kappa=float(vs.kappas[best.index]), detection=None
    )
    return stored, ref
