"""`dprime align|train|evaluate|export|calibrate`: the offline pipeline (torch is imported only by train,
evaluate of a checkpoint, and export)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def register(sub: Any) -> None:
    """Add the pipeline commands."""
    p = sub.add_parser("align", help="detect and align an identity-folder dataset")
    p.add_argument("src", type=Path, help="SRC/<identity>/<image>")
    p.add_argument("dst", type=Path, help="aligned crops go to DST/<identity>/<image>.png")
    p.add_argument("--detector", default="retinaface", help="'retinaface', 'retinaface:PATH' or 'yunet:PATH'")
    p.add_argument("--det-score", type=float, default=0.8, help="detector score threshold")
    p.add_argument("--crop", choices=["template", "box_margin"], default="template")
    p.add_argument("--size", type=int, default=112, help="output side in pixels")
    p.add_argument("--margin", type=float, default=32.0, help="box_margin crops: total margin in source pixels")
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


def _align(args: argparse.Namespace) -> int:
    from facecore.manifest import BoxMarginCrop, PreprocessSpec, TemplateCrop
    from facepipe.detectors import spec_from_string
    from training.align import align_dataset

    crop = TemplateCrop() if args.crop == "template" else BoxMarginCrop(margin_px=args.margin)
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
