"""`dprime evaluate` on a real pair protocol file format, against facecore computed independently."""

import json
import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest

from dprime.cli import main
from facecore.calibration import equal_error_rate
from facecore.decidability import d_prime
from facecore.protocols import kfold_accuracy
from tests.data import require
from training.data.pairs import load_pairs
from training.embedding import OnnxBatchEmbedder, embed_images


def make_bin(gallery: Path, path: Path, n_pairs: int = 120, seed: int = 0) -> None:
    """An InsightFace-style .bin of aligned synthetic faces: half same-identity, half different."""
    rng = np.random.default_rng(seed)
    people = sorted(p for p in gallery.iterdir() if p.is_dir())
    files = {p.name: sorted(p.glob("*.png")) for p in people}
    blobs, same = [], []
    for i in range(n_pairs):
        a = people[rng.integers(len(people))].name
        b = a if i % 2 == 0 else people[rng.integers(len(people))].name
        while i % 2 == 1 and b == a:
            b = people[rng.integers(len(people))].name
        fa, fb = rng.choice(files[a], 2, replace=False) if a == b else (rng.choice(files[a]), rng.choice(files[b]))
        for f in (fa, fb):
            blobs.append(cv2.imencode(".png", cv2.imread(str(f)))[1].tobytes())
        same.append(a == b)
    with open(path, "wb") as fh:
        pickle.dump((blobs, same), fh)


def test_evaluate_report_matches_facecore(smoke_model: Path, smoke_gallery: Path, tmp_path: Path) -> None:
    make_bin(smoke_gallery, tmp_path / "synth.bin")
    out = tmp_path / "eval"
    assert (
        main(
            [
                "evaluate",
                "--model",
                str(smoke_model),
                "--pairs",
                f"bin:{tmp_path / 'synth.bin'}",
                "--out",
                str(out),
                "--n-boot",
                "200",
            ]
        )
        == 0
    )
    report = json.loads((out / "report.json").read_text())
    pairs = load_pairs(f"bin:{tmp_path / 'synth.bin'}")
    e = embed_images(pairs.images, OnnxBatchEmbedder(smoke_model), None)
    mu = e / np.linalg.norm(e, axis=1, keepdims=True)
    scores = np.sum(mu[pairs.first] * mu[pairs.second], axis=1)
    gen, imp = scores[pairs.same == 1], scores[pairs.same == 0]
    assert report["eer"] == pytest.approx(equal_error_rate(gen, imp).eer, abs=1e-9)
    assert report["d_prime"] == pytest.approx(d_prime(gen, imp), rel=1e-6)
    assert report["accuracy_mean"] == pytest.approx(kfold_accuracy(scores, pairs.same, pairs.folds).mean, abs=1e-9)
    assert report["accuracy_mean"] > 0.6 and report["d_prime_low"] < report["d_prime"] < report["d_prime_high"]
    assert report["n_folds"] == 10 and report["retrieval"] is None  # .bin sets carry no identities
    assert 0 <= report["risk_coverage"]["random_risk"] <= 1
    for png in ("report_scores.png", "report_roc.png", "report_risk_coverage.png"):
        assert (out / png).stat().st_size > 1000


def test_flip_changes_embeddings(smoke_model: Path, smoke_gallery: Path, tmp_path: Path) -> None:
    make_bin(smoke_gallery, tmp_path / "s.bin", n_pairs=10)
    pairs = load_pairs(f"bin:{tmp_path / 's.bin'}")
    plain = embed_images(pairs.images, OnnxBatchEmbedder(smoke_model), None)
    flipped = embed_images(pairs.images, OnnxBatchEmbedder(smoke_model), None, flip=True)
    assert plain.shape == flipped.shape and not np.allclose(plain, flipped)


@pytest.mark.data
def test_evaluate_on_lfw_pairs_with_detection(smoke_checkpoint: Path, tmp_path: Path) -> None:
    pairs_file = require("lfw_dev") / "pairs_dev.txt"
    assert (
        main(
            [
                "evaluate",
                "--checkpoint",
                str(smoke_checkpoint),
                "--pairs",
                f"lfw:{pairs_file}",
                "--out",
                str(tmp_path),
                "--n-boot",
                "100",
                "--cache-dir",
                str(tmp_path / "cache"),
            ]
        )
        == 0
    )
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["n_pairs"] == 1200 and report["n_folds"] == 2 and report["d_prime_method"] == "identities"
    assert report["retrieval"]["n_queries"] > 100 and report["images_without_face"] < 30
    assert "0.01" in report["tar_at_far"] and "0.001" not in report["tar_at_far"]  # 600 impostors resolve 1e-2 only
    assert list((tmp_path / "cache").glob("detections_*.npz"))
