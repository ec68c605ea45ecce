"""The crop options shared by `dprime align` and `dprime models import`."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from facecore.manifest import CropSpec


def add_crop_arguments(p: argparse.ArgumentParser, default: str = "template") -> None:
    """--crop and the box_margin crop's margins and clipping."""
    p.add_argument("--crop", choices=["template", "box_margin"], default=default)
    p.add_argument("--margin", type=float, default=32.0, help="box_margin: total margin in source pixels")
    p.add_argument(
        "--margin-ratio", type=float, default=0.0, help="box_margin: further total margin as a fraction of the box"
    )
    p.add_argument(
        "--no-clip",
        dest="clip",
        action="store_false",
        help="box_margin: pad with black outside the photo instead of clipping the grown box to it",
    )


def crop_from_args(args: argparse.Namespace) -> CropSpec:
    """The crop the options describe."""
    from facecore.manifest import BoxMarginCrop, TemplateCrop

    if args.crop == "template":
        return TemplateCrop()
    return BoxMarginCrop(margin_px=args.margin, margin_ratio=args.margin_ratio, clip=args.clip)
