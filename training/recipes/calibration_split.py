"""Which people the bundled model is calibrated on: ones it neither trained on nor is evaluated on.

Training used CFP folds 1-3 and LFW dev fold 10; the decisions are evaluated on LFW fold 9 and CFP folds 4-5.
That leaves CelebA's full photos (``celeba_dev/photos``) for calibration, after dropping any CelebA person whose
mean face direction is close to an evaluated person's (CelebA may hold people of LFW or CFP under another label).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import numpy.typing as npt

from facepipe.detectors import DetectorSpec
from training.calibrate import embed_for_calibration
from training.data.datasets import IMAGE_SUFFIXES
from training.embedding import found_rows

logger = logging.getLogger(__name__)


def person_images(root: Path, names: set[str] | None = None) -> tuple[list[Path], list[str]]:
    """Every image of root/<person>/ (only the named people when names is given), with its person."""
    files: list[Path] = []
    labels: list[str] = []
    for person in sorted(p for p in root.iterdir() if p.is_dir() and (names is None or p.name in names)):
        for f in sorted(person.iterdir()):
            if f.suffix.lower() in IMAGE_SUFFIXES:
                files.append(f)
                labels.append(person.name)
    return files, labels


def mean_directions(
    model_dir: Path, files: list[Path], labels: list[str], detector: DetectorSpec, cache: Path
) -> tuple[list[str], npt.NDArray[np.float64]]:
    """Each person's mean face direction (unit), through the face path."""
    raw = embed_for_calibration(model_dir, files, False, detector, cache, None)
    found = found_rows(raw)
    mu = raw[found] / np.linalg.norm(raw[found], axis=1, keepdims=True)
    lab = np.asarray(labels)[found]
    people = sorted(set(lab))
    means = np.stack([mu[lab == p].mean(axis=0) for p in people])
    return people, means / np.linalg.norm(means, axis=1, keepdims=True)


def calibration_people(
    model_dir: Path,
    data: Path,
    evaluated: dict[str, set[str]],
    detector: DetectorSpec,
    cache: Path,
    max_cosine: float,
) -> tuple[list[str], list[str]]:
    """(kept, dropped) CelebA people: dropped when their mean direction reaches max_cosine with an evaluated one."""
    files, labels = person_images(data / "celeba_dev" / "photos")
    celeba, celeba_means = mean_directions(model_dir, files, labels, detector, cache)
    others = []
    for folder, names in evaluated.items():
        e_files, e_labels = person_images(data / folder, names)
        others.append(mean_directions(model_dir, e_files, e_labels, detector, cache)[1])
    nearest = (celeba_means @ np.concatenate(others).T).max(axis=1)
    kept = [p for p, c in zip(celeba, nearest, strict=True) if c < max_cosine]
    dropped = [p for p, c in zip(celeba, nearest, strict=True) if c >= max_cosine]
    logger.info(
        "CelebA calibration people: %d kept, %d dropped as close to an evaluated person", len(kept), len(dropped)
    )
    return kept, dropped
