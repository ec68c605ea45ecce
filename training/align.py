"""`dprime align SRC DST`: detect and crop every image of an identity-folder dataset, as the service would.

Both cores work (one detector process each), a progress bar shows, already-written crops are skipped so
an interrupted run resumes, and images that cannot be used are listed in ``DST/align_report.json``
(no face, several faces when asked to refuse them, unreadable) instead of stopping the run.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import cv2
from pydantic import BaseModel, Field

from facecore.fileio import atomic_write_text
from facecore.manifest import PreprocessSpec
from facepipe.crops import crop_face
from facepipe.detectors import DetectorSpec
from training.data.datasets import IMAGE_SUFFIXES, DatasetError
from training.faces import find_faces, load_image

logger = logging.getLogger(__name__)

REPORT_NAME = "align_report.json"
SPEC_NAME = "align_spec.json"


class RejectedImage(BaseModel):
    """An image that was not aligned, and why."""

    path: str
    reason: str
    message: str = ""


class AlignSpec(BaseModel):
    """How a folder's crops are cut; extra keys (a full report's) are ignored when reading one back."""

    preprocess: PreprocessSpec
    detector: DetectorSpec


class AlignReport(BaseModel):
    """What one `dprime align` run did."""

    source: str
    destination: str
    preprocess: PreprocessSpec
    detector: DetectorSpec
    multiple_faces: str
    finished: datetime
    counts: dict[str, int] = Field(description="aligned, skipped (already done), and each rejection reason")
    several_faces_kept_largest: list[str] = Field(default_factory=list)
    rejected: list[RejectedImage] = Field(default_factory=list)


def source_images(src: Path) -> list[Path]:
    """Every image under src/<identity>/, sorted."""
    if not src.is_dir():
        raise DatasetError(f"no source folder at {src}")
    files = sorted(p for p in src.glob("*/*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DatasetError(f"no images under {src}/<identity>/")
    return files


def output_path(dst: Path, src: Path, image: Path) -> Path:
    """dst/<identity>/<stem>.png for src/<identity>/<name>."""
    rel = image.relative_to(src)
    return dst / rel.parent / (rel.stem + ".png")


def check_same_recipe(dst: Path, preprocess: PreprocessSpec, detector: DetectorSpec) -> None:
    """Refuse to resume into a folder whose crops were cut another way; record this run's way otherwise.

    Resuming skips every crop already written, so a changed crop or detector would silently mix two
    preprocessings in one training set.
    """
    spec = AlignSpec(preprocess=preprocess, detector=detector)
    for name in (SPEC_NAME, REPORT_NAME):
        path = dst / name
        if path.is_file():
            earlier = AlignSpec.model_validate_json(path.read_text())
            if earlier != spec:
                raise DatasetError(
                    f"{dst} holds crops made with {earlier.model_dump_json()}, not {spec.model_dump_json()}; "
                    "align into an empty folder or delete this one"
                )
    dst.mkdir(parents=True, exist_ok=True)
    atomic_write_text(dst / SPEC_NAME, spec.model_dump_json(indent=2) + "\n")


def align_dataset(
    src: Path,
    dst: Path,
    preprocess: PreprocessSpec,
    detector: DetectorSpec,
    multiple_faces: Literal["largest", "reject"] = "largest",
    workers: int | None = None,
) -> AlignReport:
    """Align src into dst and write the report; returns it."""
    src, dst = Path(src), Path(dst)
    images = source_images(src)
    check_same_recipe(dst, preprocess, detector)
    # Earlier rejections have no output, so a resumed run re-examines them and this run's report is complete.
    todo = [p for p in images if not output_path(dst, src, p).is_file()]
    counts: Counter[str] = Counter(skipped=len(images) - len(todo), aligned=0)
    kept_largest: list[str] = []
    rejected: list[RejectedImage] = []
    logger.info("aligning %d images (%d already done) from %s into %s", len(todo), counts["skipped"], src, dst)
    for i, finding in find_faces(todo, detector, workers, desc="align"):
        path = todo[i]
        rel = str(path.relative_to(src))
        if finding.outcome == "several_faces" and multiple_faces == "largest":
            kept_largest.append(rel)
        elif finding.outcome != "ok":
            counts[finding.outcome] += 1
            message = finding.message or f"{finding.n_faces} faces"
            rejected.append(RejectedImage(path=rel, reason=finding.outcome, message=message))
            continue
        if finding.detection is None:
            raise RuntimeError(f"{rel}: a usable finding without a detection")
        crop = crop_face(load_image(path), finding.detection, preprocess)
        out = output_path(dst, src, path)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp.png")
        # Write then rename, so an interrupted run never leaves a half-written crop that would be skipped later.
        if not cv2.imwrite(str(tmp), crop[:, :, ::-1]):
            raise OSError(f"could not write {tmp}")
        os.replace(tmp, out)
        counts["aligned"] += 1
    report = AlignReport(
        source=str(src),
        destination=str(dst),
        preprocess=preprocess,
        detector=detector,
        multiple_faces=multiple_faces,
        finished=datetime.now(UTC),
        counts=dict(counts),
        several_faces_kept_largest=kept_largest,
        rejected=rejected,
    )
    atomic_write_text(dst / REPORT_NAME, report.model_dump_json(indent=2) + "\n")
    logger.info(
        "aligned %d, skipped %d, rejected %d (see %s)",
        counts["aligned"],
        counts["skipped"],
        len(rejected),
        dst / REPORT_NAME,
    )
    return report
