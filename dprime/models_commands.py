"""`dprime models list|show|activate|rollback`: the model registry, through facecore only."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from dprime.crop_args import add_crop_arguments, crop_from_args

logger = logging.getLogger(__name__)


def register(sub: Any) -> None:
    """Add the `models` command group to a subparsers object."""
    models = sub.add_parser("models", help="list, inspect, activate or roll back models")
    models.add_argument("--models-dir", type=Path, default=Path("models"), help="models directory (default models/)")
    msub = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    p = msub.add_parser("list", help="every model, its backbone, loss, and whether it is calibrated and active")
    p.set_defaults(handler=_list)
    p = msub.add_parser("show", help="print one model's manifest")
    p.add_argument("model_id")
    p.set_defaults(handler=_show)
    p = msub.add_parser("activate", help="make a model active (checksum verified first)")
    p.add_argument("model_id")
    p.set_defaults(handler=_activate)
    p = msub.add_parser("rollback", help="re-activate the previously active model")
    p.set_defaults(handler=_rollback)
    p = msub.add_parser("import", help="bring your own ONNX face model: write its manifest, optionally calibrate")
    p.add_argument("onnx", type=Path, help="a face embedding model: one image input, one (N, D) output")
    p.add_argument("--id", dest="model_id", required=True, help="model id (its folder under --models-dir)")
    p.add_argument("--input-size", type=int, nargs=2, default=[112, 112], metavar=("H", "W"))
    p.add_argument("--color", choices=["RGB", "BGR"], default="RGB")
    p.add_argument("--mean", type=float, nargs=3, default=[127.5, 127.5, 127.5])
    p.add_argument("--std", type=float, nargs=3, default=[128.0, 128.0, 128.0])
    add_crop_arguments(p)
    p.add_argument("--kappa-trained", action="store_true", help="the model's output norm is a trained certainty")
    p.add_argument("--pairs", action="append", default=[], help="calibrate right away on these pairs")
    p.set_defaults(handler=_import)


def _write(text: str) -> None:
    # Command output (not a log line) goes to stdout so it can be piped.
    sys.stdout.write(text + "\n")


def _list(args: argparse.Namespace) -> int:
    from facecore.registry import ModelRegistry

    rows = ModelRegistry(args.models_dir).list()
    for r in rows:
        mark = "*" if r.active else " "
        calib = "calibrated" if r.calibrated else "uncalibrated"
        _write(f"{mark} {r.model_id}  {r.backbone}/{r.loss}  d={r.embedding_dim}  {calib}  {r.created:%Y-%m-%d}")
    if not rows:
        logger.warning("no models under %s", args.models_dir)
    return 0


def _show(args: argparse.Namespace) -> int:
    from facecore.registry import ModelRegistry

    manifest = ModelRegistry(args.models_dir).load(args.model_id, verify_checksum=False)
    _write(json.dumps(manifest.model_dump(mode="json"), indent=2))
    return 0


def _activate(args: argparse.Namespace) -> int:
    from facecore.registry import ModelRegistry

    ptr = ModelRegistry(args.models_dir).activate(args.model_id)
    logger.info(
        "active model is now %s (a running service switches on POST /v1/admin/models/%s/activate)",
        ptr.active,
        ptr.active,
    )
    return 0


def _import(args: argparse.Namespace) -> int:
    from facecore.manifest import PreprocessSpec
    from training.importer import import_model

    crop = crop_from_args(args)
    spec = PreprocessSpec(
        input_size=tuple(args.input_size), color_order=args.color, mean=tuple(args.mean), std=tuple(args.std), crop=crop
    )
    out = args.models_dir / args.model_id
    import_model(args.onnx, out, spec, args.model_id, args.kappa_trained)
    if args.pairs:
        from training.calibrate import DEFAULT_FAR, calibrate_model, score_pair_sets

        sample = score_pair_sets(out, args.pairs)
        targets = [DEFAULT_FAR] if sample.impostor.size * DEFAULT_FAR >= 1 else []
        calibrate_model(out, sample, targets, targets[0] if targets else None)
    return 0


def _rollback(args: argparse.Namespace) -> int:
    from facecore.registry import ModelRegistry

    ptr = ModelRegistry(args.models_dir).rollback()
    logger.info("rolled back; active model is now %s", ptr.active)
    return 0
