"""POST /v1/verify: one calibrated 1:1 decision (two images, or an image and an enrolled identity)."""

from __future__ import annotations

from typing import Annotated

import numpy as np
from fastapi import APIRouter, File, Form, UploadFile

from facecore.errors import DprimeError
from facecore.manifest import OperatingPointRecord
from facecore.vmf import expected_cosine, log_expected_likelihood
from service.decisions import decide, face_quality, operating_point_out
from service.deps import ReadKey, StateDep
from service.errors import ServiceError
from service.pipeline import EmbeddedFace, FacePolicy
from service.routes.forms import OperatingPointForm, PolicyForm, read_upload
from service.runtime import ModelRuntime
from service.schemas import IdentityRef, VerifyResponse
from service.state import AppState

router = APIRouter(prefix="/v1", tags=["decisions"])


@router.post("/verify", response_model=VerifyResponse)
def verify(
    state: StateDep,
    _: ReadKey,
    image_a: Annotated[UploadFile, File(description="the probe photo")],
    image_b: Annotated[UploadFile | None, File(description="the photo to compare with")] = None,
    identity_id: Annotated[str | None, Form(description="compare with this enrolled identity instead")] = None,
    operating_point: OperatingPointForm = None,
    multiple_faces: PolicyForm = None,
) -> VerifyResponse:
    """Same person or not, with the threshold, its measured FAR/FRR and each face's certainty."""
    policy = multiple_faces or state.settings.multiple_faces
    if policy == "all":
        raise ServiceError("validation_error", "multiple_faces=all is not allowed for verify: one face per side")
    runtime = state.active_runtime()
    point = runtime.operating_point(operating_point or state.settings.operating_point)
    probe = read_upload(image_a, state.settings.max_image_bytes)
    if image_b is not None and identity_id is None:
        other = read_upload(image_b, state.settings.max_image_bytes)
        a, b = _embed_pair(state, runtime, probe, other, policy)
        ref = None
    elif identity_id is not None and image_b is None:
        a = state.pipeline.embed_image(probe, runtime, policy)[0]
        b, ref = _best_enrolled_face(state, runtime, a, identity_id, point)
    else:
        raise ServiceError("validation_error", "send exactly one of image_b or identity_id with image_a")
    manifest = runtime.manifest
    cosine = float(np.dot(a.mu, b.mu))
    decision = decide(cosine, [a.kappa, b.kappa], manifest, point)
    state.metrics.decisions.labels(kind="verify", outcome=decision).inc()
    state.metrics.score.observe(cosine)
    dim = manifest.embedding_dim
    return VerifyResponse(
        decision=decision,
        cosine=cosine,
        threshold=point.threshold,
        operating_point=operating_point_out(point, manifest),
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
    state: AppState, runtime: ModelRuntime, probe: EmbeddedFace, identity_id: str, point: OperatingPointRecord
) -> tuple[EmbeddedFace, IdentityRef]:
    """The identity's face most similar to the probe (best of n, so FAR grows with n: reported as far_bound)."""
    vs = state.gallery.identity_vectors(identity_id, runtime)
    if vs.face_ids.size == 0:
        raise ServiceError("unknown_identity", f"identity {identity_id!r} has no faces to compare with")
    cosines = vs.vectors.astype(np.float64) @ probe.mu
    best = int(np.argmax(cosines))
    row = state.gallery.store.get_identity(identity_id)
    n = int(vs.face_ids.size)
    ref = IdentityRef(
        id=identity_id,
        name=row.name if row else "",
        faces_compared=n,
        best_face_id=int(vs.face_ids[best]),
        far_bound=min(1.0, n * point.far),
    )
    stored = EmbeddedFace(mu=vs.vectors[best].astype(np.float64), kappa=float(vs.kappas[best]), detection=None)
    return stored, ref
