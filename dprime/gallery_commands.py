"""`dprime gallery backup|restore`: a consistent copy of a live gallery, and putting one back (service stopped)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def register(sub: Any) -> None:
    """Add the `gallery` command group."""
    gallery = sub.add_parser("gallery", help="back up or restore the identity gallery")
    gallery.add_argument(
        "--data-dir", type=Path, default=None, help="service data dir (default: $DPRIME_DATA_DIR or var/)"
    )
    gsub = gallery.add_subparsers(dest="gallery_command", required=True, metavar="ACTION")
    p = gsub.add_parser("backup", help="copy the gallery into a new directory (safe while the service runs)")
    p.add_argument("dest", type=Path, help="a new or empty directory")
    p.set_defaults(handler=_backup)
    p = gsub.add_parser("restore", help="replace the gallery by a backup (stop the service first)")
    p.add_argument("source", type=Path, help="a directory written by `dprime gallery backup`")
    p.set_defaults(handler=_restore)


def _data_dir(args: argparse.Namespace) -> Path:
    return Path(args.data_dir or os.environ.get("DPRIME_DATA_DIR", "var"))


def _backup(args: argparse.Namespace) -> int:
    from service.gallery_backup import backup

    info = backup(_data_dir(args), args.dest)
    sys.stdout.write(info.model_dump_json() + "\n")
    return 0


def _restore(args: argparse.Namespace) -> int:
    from service.gallery_backup import restore

    info = restore(args.source, _data_dir(args))
    sys.stdout.write(info.model_dump_json() + "\n")
    return 0
