"""Response bodies of the API (the request bodies are multipart forms, declared on the routes)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

Decision = Literal["match", "non_match", "uncertain"]


class FaceQuality(BaseModel):
    """How certain the model is about one face."""

    kappa: float = Field(description="vMF concentration: the raw embedding's norm")
    quality_pct: float | None = Field(description="percentile of kappa among the calibration faces")
    low_quality: bool = Field(description="kappa is below the model's kappa_min: too uncertain to decide on")
    mean_resultant: float = Field(description="A_d(kappa): expected cosine between this face and its mean direction")
    box: list[float] | None = Field(default=None, description="x1, y1, x2, y2 in source pixels")
    landmarks: list[list[float]] | None = Field(default=None, description="5 points (x, y) in source pixels")
    det_score: float | None = None


class EmbeddedFaceOut(FaceQuality):
    """One face of /v1/embed."""

    embedding: list[float] = Field(description="the raw embedding e; mu = e/||e||, kappa = ||e||")


class EmbedResponse(BaseModel):
    """Embeddings of every face kept from the image."""

    model_id: str
    faces: list[EmbeddedFaceOut]


class OperatingPointOut(BaseModel):
    """The calibrated operating point a decision used, with the error rates measured at it."""

    name: str
    target_far: float | None
    far: float = Field(description="false accept rate measured at this threshold on the calibration pairs")
    frr: float = Field(description="false reject rate measured at this threshold on the calibration pairs")
    threshold: float
    calibration_set: str


class IdentityRef(BaseModel):
    """The enrolled identity a probe was compared with."""

    id: str
    name: str
    faces_compared: int
    best_face_id: int
    far_bound: float = Field(
        description="upper bound on the false accept rate of a best-of-n comparison: min(1, n * FAR)"
    )


class VerifyResponse(BaseModel):
    """A 1:1 decision and the calibration behind it."""

    decision: Decision
    cosine: float
    threshold: float
    operating_point: OperatingPointOut
    faces: list[FaceQuality]
    expected_cosine: float = Field(description="A(kappa_a) A(kappa_b) cosine: shrinks toward 0 when unsure")
    log_expected_likelihood: float = Field(description="closed-form vMF-vMF log expected likelihood")
    identity: IdentityRef | None = None
    model_id: str


class FaceOut(BaseModel):
    """A stored face."""

    face_id: int
    created: str
    kappa: float | None
    det_score: float | None
    has_chip: bool


class IdentityOut(BaseModel):
    """An enrolled identity."""

    id: str
    name: str
    metadata: dict[str, Any]
    created: str
    faces: list[FaceOut]


class AcceptedImage(BaseModel):
    """An uploaded image that became a face of the identity."""

    index: int
    filename: str | None
    face_id: int
    kappa: float
    quality_pct: float | None


class RejectedImage(BaseModel):
    """An uploaded image that was not enrolled, and why."""

    index: int
    filename: str | None
    code: str
    message: str


class EnrollResponse(BaseModel):
    """Partial success: the identity with its accepted faces and a reason for every rejected image."""

    identity: IdentityOut
    accepted: list[AcceptedImage]
    rejected: list[RejectedImage]
    model_id: str


class IdentityPage(BaseModel):
    """One page of identities; pass next_cursor back as cursor for the next."""

    items: list[IdentityOut]
    next_cursor: str | None


class DeleteResponse(BaseModel):
    """What a deletion removed."""

    id: str
    deleted_faces: int


class SearchHit(BaseModel):
    """One candidate identity."""

    identity_id: str
    name: str
    face_id: int
    cosine: float
    decision: Decision


class SearchResponse(BaseModel):
    """1:N result: 'match' when a candidate clears the threshold, 'unknown' when none does."""

    result: Literal["match", "unknown", "uncertain"]
    hits: list[SearchHit]
    threshold: float
    operating_point: OperatingPointOut
    query_face: FaceQuality
    gallery_faces: int
    expected_false_matches: float = Field(description="gallery faces x FAR: impostor hits expected per search")
    model_id: str


class ModelOut(BaseModel):
    """A model in the registry."""

    model_id: str
    created: datetime
    backbone: str
    loss: str
    embedding_dim: int
    calibrated: bool
    active: bool
    serving: bool
    kappa_trained: bool | None = None
    kappa_min: float | None = None
    operating_points: list[dict[str, Any]] = Field(default_factory=list)
    default_operating_point: str | None = None


class ModelList(BaseModel):
    """Every model and which one serves."""

    serving_model_id: str | None
    models: list[ModelOut]


class Health(BaseModel):
    """Liveness."""

    status: Literal["ok"]


class Ready(BaseModel):
    """Readiness: a model and the gallery are loaded."""

    ready: bool
    model_id: str | None
    reason: str | None
    providers: list[str]
    gallery_faces: int
