"""Calibration in the user's own domain over HTTP (admin): measure it, adopt it, revert it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from facecore.errors import CalibrationError
from service.deps import AdminKey, StateDep
from service.errors import ServiceError
from service.gallery_calibration import adopt, measure
from service.schemas import AdoptResult, GalleryReport, RevertResult

router = APIRouter(prefix="/v1/admin", tags=["calibration"])

RuleQuery = Annotated[str | None, Query(description="the rule to measure (default: the serving default)")]


@router.get("/calibration", response_model=GalleryReport)
def gallery_report(state: StateDep, _: AdminKey, rule: RuleQuery = None) -> GalleryReport:
    """Observed FAR and miss rate of each band on the enrolled faces, and whether the stated rates hold."""
    runtime = state.active_runtime()
    with state.gallery.switch_lock.read():
        n_boot = state.settings.calibration_n_boot
        return measure(state.gallery.store, runtime.manifest, state.calibrations, rule, n_boot)


@router.post("/calibration", response_model=AdoptResult, status_code=status.HTTP_201_CREATED)
def adopt_gallery_calibration(state: StateDep, _: AdminKey, rule: RuleQuery = None) -> AdoptResult:
    """Refit the thresholds on the enrolled faces and adopt them; refused (409) when the gallery is too small."""
    runtime = state.active_runtime()
    try:
        with state.gallery.switch_lock.read():
            n_boot = state.settings.calibration_n_boot
            return adopt(state.gallery.store, runtime.manifest, state.calibrations, rule, n_boot)
    except CalibrationError as exc:
        raise ServiceError("calibration_unresolved", str(exc), dict(exc.details)) from exc


@router.delete("/calibration", response_model=RevertResult)
def revert_gallery_calibration(state: StateDep, _: AdminKey) -> RevertResult:
    """Return decisions to the model manifest's calibration."""
    runtime = state.active_runtime()
    reverted = state.calibrations.revert(runtime.model_id)
    return RevertResult(model_id=runtime.model_id, reverted=reverted, calibration_id="manifest")
