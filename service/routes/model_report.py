"""A model's calibration report figures (the PNGs written with it under models/<id>/report/), for reading keys."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from facecore.constants import REPORT_DIRNAME
from service.deps import ReadKey, StateDep
from service.error_catalogue import ServiceError
from service.openapi import read_errors
from service.schemas import ModelReport, ReportPlot
from service.state import AppState

router = APIRouter(prefix="/v1/models", tags=["models"])


def _plots(state: AppState, model_id: str) -> dict[str, Path]:
    """The report's figures by file name; unknown_model when the registry has no such model."""
    if model_id not in state.registry.model_ids():
        raise ServiceError("unknown_model", f"no model {model_id!r} in the registry", {"model_id": model_id})
    folder = state.registry.model_dir(model_id) / REPORT_DIRNAME
    return {p.name: p for p in sorted(folder.glob("*.png"))} if folder.is_dir() else {}


@router.get("/{model_id}/report", response_model=ModelReport, responses=read_errors(404))
def model_report(state: StateDep, _: ReadKey, model_id: str) -> ModelReport:
    """The figures of the model's calibration report (score distributions, ROC, risk-coverage)."""
    plots = _plots(state, model_id)
    return ModelReport(
        model_id=model_id, plots=[ReportPlot(name=n, url=f"/v1/models/{model_id}/report/{n}") for n in plots]
    )


@router.get(
    "/{model_id}/report/{name}",
    response_class=FileResponse,
    responses={200: {"content": {"image/png": {}}, "description": "the figure"}, **read_errors(404)},
)
def report_plot(state: StateDep, _: ReadKey, model_id: str, name: str) -> FileResponse:
    """One figure of the report, by the name model_report lists."""
    path = _plots(state, model_id).get(name)
    if path is None:
        raise ServiceError("not_found", f"model {model_id!r} has no report figure {name!r}", {"name": name})
    return FileResponse(path, media_type="image/png")
