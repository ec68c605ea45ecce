"""`dprime gallery backup|restore|migrate`: a consistent copy of a live gallery, putting one back (service stopped),
and moving a SQLite gallery into PostgreSQL."""

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
    p = gsub.add_parser(
        "migrate", help="copy a SQLite gallery into an empty PostgreSQL database (stop the service first)"
    )
    p.add_argument("--from", dest="source", required=True, help="sqlite:///PATH/gallery.sqlite3")
    p.add_argument("--to", dest="dest", required=True, help="postgresql://USER:PASS@HOST:PORT/DB")
    p.set_defaults(handler=_migrate)


def _data_dir(args: argparse.Namespace) -> Path:
    return Path(args.data_dir or os.environ.get("DPRIME_DATA_DIR", "var"))


def _refuse_postgresql(action: str) -> bool:
    """True (after saying why) when DPRIME_GALLERY_URL names a PostgreSQL gallery, which SQLite backups miss."""
    url = os.environ.get("DPRIME_GALLERY_URL", "")
    if url.startswith(("postgresql://", "postgres://")):
        logger.error("DPRIME_GALLERY_URL names a PostgreSQL gallery: %s it with pg_dump / pg_restore", action)
        return True
    return False


def _backup(args: argparse.Namespace) -> int:
    from service.gallery_backup import backup

    if _refuse_postgresql("back up"):
        return 2

    info = backup(_data_dir(args), args.dest)
    sys.stdout.write(info.model_dump_json() + "\n")
    return 0


def _restore(args: argparse.Namespace) -> int:
    from service.gallery_backup import restore

    if _refuse_postgresql("restore"):
        return 2

    info = restore(args.source, _data_dir(args))
    sys.stdout.write(info.model_dump_json() + "\n")
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from service.gallery_migrate import migrate
    from service.gallery_url import parse_gallery_url

    try:
        source, dest = parse_gallery_url(args.source), parse_gallery_url(args.dest)
    except ValueError as exc:
        logger.error("%s", exc)
        return 2
    report = migrate(source, dest)
    sys.stdout.write(report.model_dump_json() + "\n")
    return 0
