"""Training fixtures: one smoke run and its exported model, shared by the evaluation/export/calibration tests."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from dprime.cli import main
from training.config import load_config
from training.setup import build_dataset

REPO = Path(__file__).resolve().parents[2]
SMOKE = REPO / "training" / "configs" / "smoke.yaml"


@pytest.fixture(scope="session")
def smoke_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """final.pt of a smoke training run (synthetic identities, tiny backbone)."""
    run = tmp_path_factory.mktemp("smoke_run")
    assert main(["train", "--config", str(SMOKE), "--set", "optim.epochs=6", "--out", str(run)]) == 0
    return run / "checkpoints" / "final.pt"


@pytest.fixture(scope="session")
def smoke_gallery(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The smoke run's synthetic identities as an aligned gallery: gallery/<identity>/<i>.png."""
    root = tmp_path_factory.mktemp("gallery")
    dataset = build_dataset(load_config(SMOKE))
    for i in range(len(dataset)):
        img, label = dataset[i]
        folder = root / dataset.class_names[label]
        folder.mkdir(exist_ok=True)
        cv2.imwrite(str(folder / f"{i:03d}.png"), np.ascontiguousarray(img[:, :, ::-1]))
    return root


@pytest.fixture(scope="session")
def smoke_model(smoke_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The smoke checkpoint exported to models/smoke (uncalibrated)."""
    out = tmp_path_factory.mktemp("models") / "smoke"
    assert main(["export", str(smoke_checkpoint), "--out", str(out)]) == 0
    return out
