"""POST /v1/embed: embeddings with their certainty kappa."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Response, UploadFile

from service.deps import ReadKey, StateDep
from service.openapi import UPLOAD, read_errors
from service.responses import face_quality
from service.routes.forms import EmbedPolicyForm, FormBool, read_upload
from service.schemas import EmbeddedFaceOut, EmbedResponse

router = APIRouter(prefix="/v1", tags=["faces"])


@router.post("/embed", response_model=EmbedResponse, responses=read_errors(*UPLOAD))
def embed(
    state: StateDep,
    _: ReadKey,
    image: Annotated[UploadFile, File(description="JPEG, PNG or WebP")],
    aligned: Annotated[FormBool, Form(description="the image is already an aligned face crop: skip detection")] = False,
    multiple_faces: EmbedPolicyForm = None,
) -> Response:
    """Detect, align and embed the faces of an image (or one pre-aligned crop)."""
    runtime = state.active_runtime()
    data = read_upload(image, state.settings.max_image_bytes)
    if aligned:
        faces = [state.pipeline.embed_aligned(data, runtime)]
    else:
        faces = state.pipeline.embed_image(data, runtime, multiple_faces or state.settings.multiple_faces)
    out = [
        EmbeddedFaceOut(
            embedding=(f.mu * f.kappa).astype(float).tolist(), **face_quality(f, runtime.manifest).model_dump()
        )
        for f in faces
    ]
    # Serialised by pydantic-core directly: re-validating 512 floats per face through FastAPI costs more than the
    # rest of the request handling on a CPU.
    return Response(
        EmbedResponse(model_id=runtime.model_id, faces=out).model_dump_json(), media_type="application/json"
    )
