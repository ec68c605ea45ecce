"""Decisions and faces as the API reports them: translations from facecore's results to response bodies."""

from __future__ import annotations

from facecore.decision import Verdict
from facecore.decision_records import BandRecord, DecisionRecord, DecisionSet
from facecore.manifest import ModelManifest
from facecore.vmf import mean_resultant_length
from facepipe.facepath import EmbeddedFace
from service.schemas import BandOut, CalibrationRef, FaceQuality, OperatingPointOut, Thresholds


def face_quality(face: EmbeddedFace, manifest: ModelManifest) -> FaceQuality:
    """The certainty facts of one face."""
    det = face.detection
    return FaceQuality(
        kappa=face.kappa,
        quality_pct=manifest.uncertainty.quality_percentile(face.kappa),
        mean_resultant=float(mean_resultant_length(face.kappa, manifest.embedding_dim)),
        box=det.box.round(2).tolist() if det is not None else None,
        landmarks=det.landmarks.round(2).tolist() if det is not None else None,
        det_score=det.score if det is not None else None,
    )


def calibration_ref(decision_set: DecisionSet) -> CalibrationRef:
    """Which calibration decided."""
    return CalibrationRef(id=decision_set.id, source=decision_set.source, name=decision_set.name)


def band_out(band: BandRecord, rule: DecisionRecord, quality: float) -> BandOut:
    """The band that decided; fallback when the pair's own band was unresolved."""
    own = rule.own_band(quality)
    return BandOut(
        name=band.name,
        quality_low=band.quality_low,
        quality_high=band.quality_high,
        target_far=band.target_far,
        far=band.far,
        far_interval=band.far_interval,
        miss_bound=band.miss_bound,
        miss_rate=band.miss_rate,
        n_genuine=band.n_genuine,
        n_impostor=band.n_impostor,
        fallback=own is not None and not own.resolved,
    )


def thresholds(verdict: Verdict) -> Thresholds:
    """The two thresholds a verdict applied."""
    return Thresholds(accept=verdict.accept, reject=verdict.reject)


def rule_point(rule: DecisionRecord, decision_set: DecisionSet) -> OperatingPointOut:
    """A three-way rule's overall band as a classic operating point (FRR = its genuine pairs below accept)."""
    band = rule.overall
    return OperatingPointOut(
        name=rule.name,
        target_far=rule.target_far,
        far=band.far,
        frr=band.frr,
        threshold=band.accept_threshold,
        calibration_set=decision_set.name,
    )
