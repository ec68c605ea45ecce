"""Turn scores into calibrated decisions using only the numbers in the model's manifest."""

from __future__ import annotations

from collections.abc import Sequence

from facecore.manifest import ModelManifest, OperatingPointRecord
from facecore.vmf import mean_resultant_length
from service.pipeline import EmbeddedFace
from service.schemas import Decision, FaceQuality, OperatingPointOut


def is_low_quality(kappa: float, manifest: ModelManifest) -> bool:
    """kappa below the manifest's kappa_min (never, when the model records none)."""
    kappa_min = manifest.uncertainty.kappa_min
    return kappa_min is not None and kappa < kappa_min


def face_quality(face: EmbeddedFace, manifest: ModelManifest) -> FaceQuality:
    """The certainty facts of one face."""
    det = face.detection
    return FaceQuality(
        kappa=face.kappa,
        quality_pct=manifest.uncertainty.quality_percentile(face.kappa),
        low_quality=is_low_quality(face.kappa, manifest),
        mean_resultant=float(mean_resultant_length(face.kappa, manifest.embedding_dim)),
        box=det.box.round(2).tolist() if det is not None else None,
        landmarks=det.landmarks.round(2).tolist() if det is not None else None,
        det_score=det.score if det is not None else None,
    )


def decide(cosine: float, kappas: Sequence[float], manifest: ModelManifest, point: OperatingPointRecord) -> Decision:
    """'uncertain' if any face is below kappa_min, else match when cosine >= the point's threshold."""
    if any(is_low_quality(k, manifest) for k in kappas):
        return "uncertain"
    return "match" if cosine >= point.threshold else "non_match"


def operating_point_out(point: OperatingPointRecord, manifest: ModelManifest) -> OperatingPointOut:
    """The operating point as the API reports it."""
    calibration_set = manifest.calibration.pair_set.name if manifest.calibration else ""
    return OperatingPointOut(
        name=point.name,
        target_far=point.target_far,
        far=point.far,
        frr=point.frr,
        threshold=point.threshold,
        calibration_set=calibration_set,
    )
