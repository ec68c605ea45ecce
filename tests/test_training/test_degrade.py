"""Degraded training copies, the evidence head that reads them, onnxruntime trunk features and the v3 splits."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest
import torch

from training.backbones import create_backbone
from training.config import load_config
from training.data.datasets import SyntheticFaceDataset
from training.data.degraded import DegradedViews
from training.degrade import Degradation, DegradeConfig, degrade, ladder
from training.recipes.splits import lowres_pair_file
from training.trunk_features import compute_trunk_features

SMOKE = Path("training/configs/smoke.yaml")


def detail(img: np.ndarray) -> float:
    """High-frequency energy: what blur and too few pixels take away."""
    grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float64)
    return float(np.var(cv2.Laplacian(grey, cv2.CV_64F)))


def textured(size: int = 96, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (size // 4, size // 4, 3)).astype(np.float32)
    fine = rng.normal(0, 30, (size, size, 3))
    img = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC) + fine
    return np.clip(img, 0, 255).astype(np.uint8)


def test_each_degradation_takes_detail_away_and_a_larger_face_is_left_alone() -> None:
    img = textured()
    base = detail(img)
    for d in (
        Degradation(face_width=20.0),
        Degradation(blur_sigma=2.0),
        Degradation(jpeg_quality=10),
    ):
        out = degrade(img, d, face_width_px=80.0)
        assert out.shape == img.shape and out.dtype == np.uint8 and detail(out) < 0.5 * base, d
    assert np.array_equal(degrade(img, Degradation(face_width=100.0), face_width_px=80.0), img)
    noisy = degrade(img, Degradation(noise_std=10.0, noise_seed=3), 80.0)
    assert np.array_equal(noisy, degrade(img, Degradation(noise_std=10.0, noise_seed=3), 80.0))
    blocked = degrade(img, Degradation(occlusion=(0.25, 0.25, 0.5, 0.5)), 80.0)
    assert len(np.unique(blocked[30:60, 30:60].reshape(-1, 3), axis=0)) == 1
    steps = [detail(degrade(img, d, 80.0)) for d in ladder(5, 80.0)]
    assert steps == sorted(steps, reverse=True)


def test_degraded_views_are_fixed_per_item_and_keep_labels() -> None:
    base = SyntheticFaceDataset(3, 2, (48, 48), 0.2)
    views = DegradedViews(base, DegradeConfig(copies=2, seed=5), face_width_share=0.8)
    assert len(views) == 18 and views.labels.tolist() == np.repeat(base.labels, 3).tolist()
    assert np.array_equal(views[3][0], base[1][0]) and views.degradation(3).is_clean
    assert not views.degradation(4).is_clean and views[4][1] == base[1][1]
    assert np.array_equal(views[4][0], DegradedViews(base, DegradeConfig(copies=2, seed=5), 0.8)[4][0])
    assert not np.array_equal(views[4][0], DegradedViews(base, DegradeConfig(copies=2, seed=6), 0.8)[4][0])


def test_onnxruntime_trunk_features_equal_torch_and_are_cached(tmp_path: Path) -> None:
    model = create_backbone("tiny_taps", 16, input_size=48, head="vmf_evidence").eval()
    dataset = SyntheticFaceDataset(4, 3, (48, 48), 0.2)

    def batch(idx: np.ndarray) -> torch.Tensor:
        x = np.stack([dataset[int(i)][0] for i in idx]).astype(np.float32)
        return torch.from_numpy((x.transpose(0, 3, 1, 2) - 127.5) / 128.0)

    plain, mirrored = compute_trunk_features(model.trunk, dataset, batch, 5, torch.device("cpu"), tmp_path)
    with torch.no_grad():
        x = batch(np.arange(len(dataset)))
        assert torch.allclose(plain, model.trunk(x), atol=1e-4) and torch.allclose(mirrored, model.trunk(x.flip(-1)))
    (cached,) = tmp_path.glob("features_*.npz")
    again, _ = compute_trunk_features(model.trunk, dataset, batch, 5, torch.device("cpu"), tmp_path)
    assert torch.equal(again, plain) and list(tmp_path.glob("features_*.npz")) == [cached]


def test_clean_direction_views_draw_batches_from_the_photos_only() -> None:
    from training.train import training_items

    base = SyntheticFaceDataset(3, 2, (32, 32), noise=5.0)
    views = DegradedViews(base, DegradeConfig(copies=2), face_width_share=0.8)
    config = load_config(SMOKE, ["data.direction_views=clean"])
    items = training_items(views, config)
    assert items.tolist() == list(range(0, len(views), 3))
    assert all(views.degradation(int(i)) == Degradation() for i in items)  # copy 0: the photo itself
    assert np.array_equal(views.labels[items], base.labels)
    assert training_items(views, load_config(SMOKE)).tolist() == list(range(len(views)))


@pytest.mark.parametrize("direction_views", ["all", "clean"])
def test_evidence_head_trains_on_degraded_copies_and_exports_with_parity(tmp_path: Path, direction_views: str) -> None:
    from training.checkpoint_model import load_trained_model
    from training.export import export_checkpoint
    from training.train import run_training

    overrides = [
        f"data.direction_views={direction_views}",
        "model.backbone=tiny_taps",
        "model.head=vmf_evidence",
        "model.freeze_trunk=true",
        "model.kappa_init=8",
        "optim.epochs=2",
        "data.degrade.copies=2",
        "data.degrade.face_width_share=0.6",
    ]
    checkpoint = run_training(load_config(SMOKE, overrides), tmp_path / "run")
    model, _, _ = load_trained_model(checkpoint)
    assert float(model.head.evidence[2].weight.detach().abs().sum()) > 0  # the evidence MLP left its zero start
    manifest = export_checkpoint(checkpoint, tmp_path / "evidence")
    assert "earlier stages" in (manifest.provenance.notes or "")
    x = np.random.default_rng(3).normal(size=(3, 3, 64, 64)).astype(np.float32)
    got = ort.InferenceSession(str(tmp_path / "evidence" / "model.onnx")).run(None, {"images": x})[0]
    with torch.no_grad():
        assert np.allclose(got, model(torch.from_numpy(x)).numpy(), rtol=1e-4, atol=1e-4)


def test_evidence_head_needs_tap_features() -> None:
    with pytest.raises(ValueError, match="tap features"):
        create_backbone("tiny", 16, head="vmf_evidence")


def test_lowres_pairs_share_no_person_across_folds_and_balance_same_and_different(tmp_path: Path) -> None:
    root = tmp_path / "lowres"
    people = {f"p{i:02d}": 2 + i % 3 for i in range(24)}
    for person, n in people.items():
        (root / person).mkdir(parents=True)
        for k in range(n):
            cv2.imwrite(str(root / person / f"{k}.jpg"), textured(16, k))
    tsv = lowres_pair_file(root, set(people), tmp_path / "eval", n_folds=4)
    rows = [ln.split("\t") for ln in tsv.read_text().splitlines()[1:]]
    same = [r for r in rows if r[2] == "1"]
    assert len(same) == sum(n * (n - 1) // 2 for n in people.values()) == len(rows) - len(same)
    fold_people: dict[str, set[str]] = {}
    for a, b, s, fold in rows:
        fold_people.setdefault(fold, set()).update({a.split("/")[0], b.split("/")[0]})
        assert (a.split("/")[0] == b.split("/")[0]) == (s == "1")
    sets = list(fold_people.values())
    assert len(sets) == 4 and all(not (x & y) for i, x in enumerate(sets) for y in sets[i + 1 :])
    assert (tmp_path / "eval" / "p00" / "0.jpg").is_file()
