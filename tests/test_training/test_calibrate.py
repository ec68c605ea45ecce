"""`dprime calibrate`: values against facecore on a known pair set, refusals, the check mode, BYO models,
and (with the labelled faces in DPRIME_DATA) the honesty check on identity-disjoint splits."""

import json
from pathlib import Path

import numpy as np
import pytest

from dprime.cli import main
from facecore.calibration import equal_error_rate, far_at, frr_at, threshold_at_far
from facecore.decidability import d_prime
from facecore.manifest import load_manifest
from facecore.registry import ModelRegistry
from tests.data import require
from tests.factories import tiny_onnx_model
from training.calibrate import concat_samples, score_gallery
from training.calibration_check import check_operating_points
from training.embedding import OnnxBatchEmbedder, embed_images

# The smoke gallery holds 12 people with 8 images: enough for FAR 1e-2 and a 5 % miss bound, not the defaults.
SMALL_RULE = ["--miss-bound", "0.05", "--min-identities", "10", "--bands", "2"]


def gallery_scores(model: Path, gallery: Path) -> tuple[np.ndarray, np.ndarray]:
    files = sorted(gallery.glob("*/*.png"))
    e = embed_images(files, OnnxBatchEmbedder(model), None)
    mu = e / np.linalg.norm(e, axis=1, keepdims=True)
    labels = np.array([f.parent.name for f in files])
    iu = np.triu_indices(len(files), 1)
    s = (mu @ mu.T)[iu]
    same = labels[iu[0]] == labels[iu[1]]
    return s[same], s[~same]


def test_calibration_values_match_facecore(smoke_model: Path, smoke_gallery: Path, tmp_path: Path) -> None:
    model = tmp_path / "m"
    import shutil

    shutil.copytree(smoke_model, model)
    assert (
        main(
            [
                "calibrate",
                str(model),
                "--all-impostors",
                str(smoke_gallery),
                "--aligned",
                "--far",
                "1e-2",
                "--far",
                "2e-2",
                *SMALL_RULE,
                "--n-boot",
                "100",
            ]
        )
        == 0
    )
    cal = load_manifest(model).calibration
    assert cal is not None and cal.pair_set.mode == "all_impostors"
    gen, imp = gallery_scores(model, smoke_gallery)
    assert (cal.pair_set.n_genuine, cal.pair_set.n_impostor) == (gen.size, imp.size) == (12 * 28, 4224)
    assert cal.d_prime.value == pytest.approx(d_prime(gen, imp), rel=1e-5)
    assert cal.eer == pytest.approx(equal_error_rate(gen, imp).eer, abs=1e-6)
    # These scores are recomputed in other batches, so they may differ from calibration's in the last float
    # bits: the threshold sits just above an impostor score, and that one pair may land on either side.
    # Each threshold holds its FAR under the identity bootstrap, so it sits at or above the plain FAR quantile.
    for p in cal.operating_points:
        if p.target_far is not None:
            assert p.threshold >= threshold_at_far(imp, p.target_far) - 1e-6
            assert p.far_interval is not None and p.far <= p.far_interval[1] <= p.target_far
            assert p.far == pytest.approx(far_at(imp, p.threshold), abs=1.01 / imp.size)
            assert p.frr == pytest.approx(frr_at(gen, p.threshold), abs=1.01 / gen.size)
    assert cal.default_operating_point == "far_1e-2"
    assert [p.name for p in cal.operating_points] == ["far_1e-2", "far_0.02", "eer"]
    ds = cal.decision_set
    assert ds is not None and [d.name for d in ds.decisions] == ["far_1e-2", "far_0.02"]
    assert ds.identification is None  # 96 faces cannot resolve FPIR 1 %
    rule = ds.decision()
    assert rule.overall.accept_threshold == cal.point().threshold and len(rule.bands) == 2
    assert rule.overall.miss_interval[1] <= 0.05 and 0 <= rule.cllr <= rule.cllr_overall + 1e-9
    u = load_manifest(model).uncertainty
    assert len(u.kappa_percentiles) == 11 and u.enroll_kappa_min is not None and u.kappa_buckets
    assert (model / "report" / "calibration.html").read_text().count("data:image/png;base64") == 3


def test_unresolvable_far_is_refused(smoke_model: Path, smoke_gallery: Path, caplog: pytest.LogCaptureFixture) -> None:
    before = (smoke_model / "manifest.json").read_text()
    assert (
        main(["calibrate", str(smoke_model), "--all-impostors", str(smoke_gallery), "--aligned", "--far", "1e-5"]) == 2
    )
    assert "target FAR 1e-05 needs at least 100000 impostor pairs to be resolved, got 4224" in caplog.text
    assert (smoke_model / "manifest.json").read_text() == before  # nothing written


def import_tiny(models: Path, onnx_file: Path, model_id: str, side: int) -> int:
    """`dprime models import` of an ONNX file with a square input of the given side."""
    args = ["models", "--models-dir", str(models), "import", str(onnx_file), "--id", model_id]
    return main([*args, "--input-size", str(side), str(side)])


def test_bring_your_own_model_then_serveable(tmp_path: Path, smoke_gallery: Path) -> None:
    onnx_file = tmp_path / "theirs.onnx"
    onnx_file.write_bytes(tiny_onnx_model(dim=8, size=64))
    models = tmp_path / "models"
    assert import_tiny(models, onnx_file, "theirs", 64) == 0
    m = load_manifest(models / "theirs")
    assert m.provenance.source == "import" and not m.uncertainty.kappa_trained and m.embedding_dim == 8
    calibrate = ["calibrate", str(models / "theirs"), "--all-impostors", str(smoke_gallery), "--aligned"]
    assert main([*calibrate, "--n-boot", "50"]) == 2  # the defaults need more people than the smoke gallery
    assert main([*calibrate, "--far", "1e-2", *SMALL_RULE, "--n-boot", "50"]) == 0
    assert load_manifest(models / "theirs").calibration is not None
    ModelRegistry(models).activate("theirs")
    assert import_tiny(models, onnx_file, "bad", 112) == 2


def test_check_mode_reports_observed_rates(smoke_model: Path, smoke_gallery: Path) -> None:
    import shutil

    model = smoke_model.parent / "checked"
    if not model.exists():
        shutil.copytree(smoke_model, model)
    args = ["calibrate", str(model), "--all-impostors", str(smoke_gallery), "--aligned", "--far", "1e-2"]
    assert main([*args, *SMALL_RULE, "--n-boot", "50"]) == 0
    sample = score_gallery(model, smoke_gallery, aligned=True)
    rows = check_operating_points(load_manifest(model), sample)
    by_name = {r.name: r for r in rows}
    assert by_name["far_1e-2"].observed_far == pytest.approx(by_name["far_1e-2"].calibrated_far)
    assert by_name["far_1e-2"].observed_far <= 1e-2 and by_name["eer"].target_interval is None
    low, high = by_name["far_1e-2"].observed_interval or (1.0, 0.0)
    assert low <= by_name["far_1e-2"].observed_far <= high
    assert by_name["far_1e-2"].holds is True


@pytest.mark.data
def test_honesty_of_the_bundled_calibration_on_unseen_identities() -> None:
    """The bundled model was calibrated (FAR 1e-3) on other people; on the evaluated LFW and CFP people, whom no
    training or calibration step saw, the identity-bootstrap interval of the observed FAR must reach the target
    (a binomial interval over pairs ignores that pairs sharing a person move together)."""
    cfp, lfw = require("cfp_dev"), require("lfw_dev")
    repo_models = Path(__file__).resolve().parents[2] / "models"
    active = ModelRegistry(repo_models).active_id()
    if active is None:
        pytest.skip("no bundled model")
    model = repo_models / active
    splits = json.loads((model / "run" / "record.json").read_text())["splits"]
    evaluated = set(splits["evaluate_cfp"]) | set(splits["evaluate_lfw"])
    seen = {p for role, people in splits.items() if role.startswith(("train", "calibrate")) for p in people}
    assert not evaluated & seen
    sample = concat_samples(
        [
            score_gallery(model, cfp, include=set(splits["evaluate_cfp"])),
            score_gallery(model, lfw, include=set(splits["evaluate_lfw"])),
        ]
    )
    row = next(r for r in check_operating_points(load_manifest(model), sample) if r.name == "far_1e-3")
    assert row.n_impostor > 100_000
    assert row.holds, json.dumps(row.model_dump())
