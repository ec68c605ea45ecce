"""`dprime models list|show|activate|rollback`: the model registry, through facecore only."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

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


def _rollback(args: argparse.Namespace) -> int:
    from facecore.registry import ModelRegistry

    ptr = ModelRegistry(args.models_dir).rollback()
    logger.info("rolled back; active model is now %s", ptr.active)
    return 0
