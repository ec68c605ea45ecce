"""Which detector the service runs: by default the one the serving model was calibrated with.

A calibration's rates were measured on the faces one detector finds and crops; another detector, or other
thresholds, changes which faces are found and where, so a setting that overrides it is logged and reported.
"""

from __future__ import annotations

import logging

from facecore.decision_records import DetectorRecord
from facecore.manifest import ModelManifest
from facepipe.detectors import DetectorSpec, detector_record, spec_for_record, spec_from_string
from service.config import Settings

logger = logging.getLogger(__name__)


def choose_detector(settings: Settings, manifest: ModelManifest | None) -> tuple[DetectorSpec, DetectorRecord, bool]:
    """(spec to run, its record, whether it differs from the model's calibrated detector)."""
    recorded = manifest.detector if manifest is not None else None
    if recorded is not None and settings.detector is None:
        spec = spec_for_record(recorded, settings.detector_path)
    elif settings.detector is not None:
        spec = spec_from_string(settings.detector)
    else:
        spec = DetectorSpec()
    overrides = {
        "score_threshold": settings.det_score_threshold,
        "nms_threshold": settings.det_nms_threshold,
        "max_side": settings.det_max_side,
    }
    spec = spec.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    record = detector_record(spec)
    overridden = recorded is not None and record != recorded
    if overridden:
        logger.warning(
            "detector overridden by settings: running %s, but model %s was calibrated with %s; its stated rates "
            "may not hold",
            record.model_dump(),
            manifest.model_id if manifest else "?",
            recorded.model_dump() if recorded else None,
        )
    elif recorded is None and manifest is not None:
        logger.warning("model %s records no calibration detector; running %s", manifest.model_id, record.model_dump())
    return spec, record, overridden
