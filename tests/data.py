"""Locating the labelled faces of the tests (the folder DPRIME_DATA names); tests skip cleanly without them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def data_root() -> Path:
    """Where the labelled faces live."""
    return Path(os.environ.get("DPRIME_DATA", REPO.parent / "shared" / "data"))


def require(name: str) -> Path:
    """The named dataset folder, or skip the test saying what is missing."""
    path = data_root() / name
    if not path.is_dir():
        pytest.skip(f"{path} is absent (set DPRIME_DATA to the folder holding lfw_dev and cfp_dev)")
    return path


def yunet_model() -> Path:
    """The shared YuNet detector, or skip."""
    path = data_root().parent / "models" / "face_detection_yunet_2023mar_dynamic.onnx"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    return path
