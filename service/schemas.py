"""Response bodies of the API (the request bodies are multipart forms, declared on the routes)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from facecore.decision_check import BandCheck
from facecore.decision_records import (
    DecisionRecord,
    DetectorRecord,
    IdentificationRecord,
    ScoreHistogramRecord,
)

Decision = Literal["match", "non_match", "uncertain"]
Action = Literal["activate", "rollback"]
Status = Literal["running", "succeeded", "failed"]


class FaceQuality(BaseModel):
    """How certain the model is about one face."""

    kappa: float = Field(description="vMF concentration: the raw embedding's norm")
    quality_pct: float | None = Field(description="percentile of kappa among the calibration faces")
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
    """The enrolled identity a probe was compared with (its best-matching face)."""

    id: str
    name: str
    faces_compared: int
    best_face_id: int
    far_bound: float = Field(
        description="the best of n comparisons accepts an impostor at most n times as often as one: min(1, n * FAR)"
    )


class Thresholds(BaseModel):
    """match at or above accept; non_match below reject; uncertain in between."""

    accept: float
    reject: float


class BandOut(BaseModel):
    """The pair-quality band whose thresholds decided, with the rates measured for it at calibration."""

    name: str
    quality_low: float | None = Field(description="pair quality (smaller kappa of the two faces) where it starts")
    quality_high: float | None
    target_far: float
    far: float = Field(description="impostor pairs of this band at or above the accept threshold, at calibration")
    far_interval: tuple[float, float] = Field(description="identity-bootstrap interval of that FAR")
    miss_bound: float = Field(description="at most this share of genuine pairs of this band are called non_match")
    miss_rate: float = Field(description="genuine pairs of this band below the reject threshold, at calibration")
    n_genuine: int
    n_impostor: int
    fallback: bool = Field(description="true when the pair's own band was too small and the overall band decided")


class CalibrationRef(BaseModel):
    """Which calibration set a decision used."""

    id: str = Field(description="'manifest', or the adopted gallery calibration's versioned id")
    source: Literal["manifest", "gallery"]
    name: str


class VerifyResponse(BaseModel):
    """A 1:1 decision, the promise it keeps and the calibration behind it."""

    decision: Decision
    cosine: float
    threshold: float = Field(description="the accept threshold applied")
    thresholds: Thresholds
    band: BandOut
    pair_quality: float = Field(description="the smaller kappa of the two faces")
    log10_lr: float = Field(description="calibrated log10 likelihood ratio, same person vs different people")
    reason: str | None = Field(description="why the decision is uncertain (null otherwise)")
    calibration: CalibrationRef
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
    collection: str = Field(description="the collection the identity belongs to")


class CollectionOut(BaseModel):
    """A collection of identities."""

    name: str
    identities: int
    faces: int


class CollectionList(BaseModel):
    """The collections the key reaches that hold at least one identity."""

    items: list[CollectionOut]


class CollectionDeleteResponse(BaseModel):
    """What deleting a whole collection removed."""

    name: str
    deleted_identities: int
    deleted_faces: int


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
    decision: Decision = Field(description="this candidate against the search's thresholds")


class FpirOut(BaseModel):
    """The open-set promise a search keeps: searches by people not enrolled name someone at most this often."""

    target: float
    fpir: float = Field(description="FPIR at the threshold on the calibration searches")
    gallery_size: int = Field(description="faces in the gallery searched")
    calibrated_gallery_size: int = Field(description="the calibrated size whose threshold applied (>= gallery_size)")
    resolvable: bool = Field(description="false: the calibration cannot represent a gallery this large")


class SearchResponse(BaseModel):
    """1:N result: 'match' keeps the FPIR for this gallery size, 'unknown' the miss bound, 'uncertain' between."""

    result: Literal["match", "unknown", "uncertain"]
    hits: list[SearchHit]
    threshold: float = Field(description="the accept threshold applied for this gallery size")
    thresholds: Thresholds
    fpir: FpirOut
    rank1_hit_rate: float = Field(description="expected share of searches by enrolled people that match them first")
    band: BandOut
    reason: str | None
    calibration: CalibrationRef
    query_face: FaceQuality
    gallery_faces: int
    model_id: str


class DetectorInfo(BaseModel):
    """The detector faces are found with, and the one the model's numbers were measured with."""

    in_use: DetectorRecord
    calibrated_with: DetectorRecord | None
    overridden: bool = Field(description="a setting replaced the calibrated detector: the stated rates may not hold")


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
    enroll_kappa_min: float | None = None
    enroll_rule: str | None = None
    operating_points: list[dict[str, Any]] = Field(default_factory=list)
    default_operating_point: str | None = None
    calibration: CalibrationRef | None = None
    decisions: list[DecisionRecord] = Field(default_factory=list, description="three-way rules with their bands")
    identification: IdentificationRecord | None = None
    score_histogram: ScoreHistogramRecord | None = None
    detector: DetectorInfo | None = None


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


class SwitchJob(BaseModel):
    """Progress of one model switch."""

    job_id: str
    action: Action
    target_model_id: str
    from_model_id: str | None
    status: Status
    faces_done: int = 0
    faces_total: int = 0
    error: dict[str, object] | None = None
    started: datetime
    finished: datetime | None = None


class GallerySample(BaseModel):
    """Counts of what a gallery offers to a calibration."""

    identities: int
    faces: int
    genuine_pairs: int
    impostor_pairs: int


class GalleryReport(BaseModel):
    """Whether the serving calibration's promises hold on the enrolled faces."""

    model_id: str
    calibration_id: str = Field(description="the calibration whose thresholds were checked")
    calibration_source: str
    rule: str
    sample: GallerySample
    bands: list[BandCheck]
    holds: bool | None = Field(description="every measurable promise holds (None: nothing could be measured)")


class AdoptResult(BaseModel):
    """A gallery calibration that was adopted."""

    calibration_id: str
    version_ids: list[str]
    rule: DecisionRecord
    identification_from: str = Field(description="'gallery' when refitted, else 'manifest' (too few faces)")
    report: GalleryReport


class RevertResult(BaseModel):
    """Decisions are back on the model's manifest."""

    model_id: str
    reverted: bool
    calibration_id: str


class KeySelf(BaseModel):
    """The key a request was sent with: its role decides which routes (and console controls) it may use."""

    role: Literal["read", "admin"]
    source: Literal["bootstrap", "stored"] = Field(description="'bootstrap': DPRIME_ADMIN_KEY; 'stored': dprime keys")
    key_id: str | None = Field(description="the stored key's id (null for the bootstrap key)")
    name: str | None = Field(description="who or what the stored key was created for")
    collections: list[str] | None = Field(
        default=None, description="the collections the key may use (null: every collection)"
    )


class ReportPlot(BaseModel):
    """One figure of a model's calibration report."""

    name: str
    url: str = Field(description="GET it with the same key; image/png")


class ModelReport(BaseModel):
    """The calibration report written with a model: its figures (empty when the model has none)."""

    model_id: str
    plots: list[ReportPlot]


class AuditEntryOut(BaseModel):
    """One action in the audit trail."""

    seq: int = Field(description="position in the trail (strictly increasing)")
    time: str
    key_name: str = Field(description="name of the API key that acted ('cli' for the dprime command)")
    action: str
    target: str | None = Field(description="identity, key or model id acted on")
    request_id: str | None
    outcome: str
    details: dict[str, Any]


class AuditPage(BaseModel):
    """One page of the audit trail; pass next_cursor back as cursor for the next."""

    items: list[AuditEntryOut]
    next_cursor: str | None
