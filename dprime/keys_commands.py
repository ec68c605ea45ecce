"""`dprime keys create|revoke|list`: API keys in the service's data directory (works while it runs)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def register(sub: Any) -> None:
    """Add the `keys` command group."""
    keys = sub.add_parser("keys", help="create, revoke or list API keys")
    keys.add_argument(
        "--data-dir", type=Path, default=None, help="service data dir (default: $DPRIME_DATA_DIR or var/)"
    )
    ksub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    p = ksub.add_parser("create", help="create a key and print it once")
    p.add_argument("--name", required=True, help="who or what uses the key")
    p.add_argument("--role", choices=["read", "admin"], default="read")
    p.set_defaults(handler=_create)
    p = ksub.add_parser("revoke", help="revoke a key by its id")
    p.add_argument("key_id")
    p.set_defaults(handler=_revoke)
    p = ksub.add_parser("list", help="list keys (ids, names, roles; never the keys)")
    p.set_defaults(handler=_list)


def _store(args: argparse.Namespace) -> Any:
    import os

    from service.keys import KeyStore

    data_dir = args.data_dir or Path(os.environ.get("DPRIME_DATA_DIR", "var"))
    return KeyStore(data_dir / "keys.sqlite3")


def _create(args: argparse.Namespace) -> int:
    info, key = _store(args).create(args.name, args.role)
    logger.info("created %s key %s for %r; it is shown only now", info.role, info.key_id, info.name)
    sys.stdout.write(key + "\n")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    if not _store(args).revoke(args.key_id):
        logger.error("no active key with id %s", args.key_id)
        return 1
    logger.info("revoked key %s", args.key_id)
    return 0


def _list(args: argparse.Namespace) -> int:
    for k in _store(args).list():
        state = f"revoked {k.revoked}" if k.revoked else "active"
        sys.stdout.write(f"{k.key_id}  {k.role:5}  {k.name}  created {k.created}  {state}\n")
    return 0
