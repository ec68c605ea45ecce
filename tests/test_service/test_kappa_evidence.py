"""The bundled model's kappa tracks evidence, on held-out photos through the service's face path.

Two properties: as a photo is degraded step by step (fewer pixels across the face, more blur, lower JPEG
quality), its kappa falls; and low-resolution photos (CelebA crops with a face about 45 px wide) sit below
nearly every ordinary LFW photo. Both on people the model neither trained nor calibrated on.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from facecore.manifest import ModelManifest, load_manifest
from facecore.registry import ModelRegistry
from facepipe.detectors import create_detector, spec_for_record
from facepipe.embedder import OnnxEmbedder
from facepipe.errors import NoFaceError
from facepipe.facepath import FacePath, ImageLimits
from tests.data import require
from training.degrade import degrade, ladder
from training.recipes.splits import person_images

MODELS = Path(__file__).resolve().parents[2] / "models"
LIMITS = ImageLimits(max_bytes=16 * 1024 * 1024, max_pixels=40_000_000)
STEPS = 6
PHOTOS = 40

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def bundled() -> tuple[Path, ModelManifest, dict[str, list[str]]]:
    active = ModelRegistry(MODELS).active_id()
    if active is None:
        pytest.skip("no bundled model")
    model_dir = MODELS / active
    splits = json.loads((model_dir / "run" / "record.json").read_text())["splits"]
    if "evaluate_lowres" not in splits:
        pytest.skip(f"{active} was not evaluated on low-resolution people")
    return model_dir, load_manifest(model_dir), splits


def face_path(manifest: ModelManifest) -> FacePath:
    assert manifest.detector is not None
    return FacePath(create_detector(spec_for_record(manifest.detector)), LIMITS)


def test_kappa_falls_as_a_photo_is_degraded_step_by_step(bundled) -> None:  # type: ignore[no-untyped-def]
    model_dir, manifest, splits = bundled
    files, _ = person_images(require("lfw_dev"), set(splits["evaluate_lfw"]))
    path, embed = face_path(manifest), OnnxEmbedder(model_dir, manifest).embed
    rhos = []
    for f in files[:: max(1, len(files) // PHOTOS)][:PHOTOS]:
        photo = path.decode(f.read_bytes())
        (det,) = path.detect(photo, "largest")
        width = float(det.box[2] - det.box[0])
        steps = [degrade(photo, d, width) for d in ladder(STEPS, width)]
        kappa = np.linalg.norm(path.embed_detected(steps, [det] * STEPS, manifest.preprocess, embed), axis=1)
        rhos.append(spearmanr(np.arange(STEPS), kappa).statistic)
    falling = float(np.mean(np.asarray(rhos) <= -0.9))
    assert falling >= 0.9, f"kappa falls (Spearman <= -0.9) on {falling:.0%} of photos; rhos {np.round(rhos, 2)}"


def test_low_resolution_photos_sit_below_ordinary_ones(bundled) -> None:  # type: ignore[no-untyped-def]
    model_dir, manifest, splits = bundled
    path, embed = face_path(manifest), OnnxEmbedder(model_dir, manifest).embed

    def kappas(root: Path, people: set[str]) -> np.ndarray:
        files, _ = person_images(root, people)
        out = []
        for f in files[:: max(1, len(files) // 200)]:
            try:
                faces = path.embed_image(f.read_bytes(), manifest.preprocess, embed, "largest")
            except NoFaceError:  # the service would answer no_face: nothing to measure
                continue
            out.append(faces[0].kappa)
        return np.asarray(out)

    lowres = kappas(require("celeba_dev") / "lowres", set(splits["evaluate_lowres"]))
    lfw = kappas(require("lfw_dev"), set(splits["evaluate_lfw"]))
    assert np.median(lowres) < np.percentile(lfw, 10), (np.median(lowres), np.percentile(lfw, [10, 50]))
