"""`dprime keys create|revoke|list`: API keys where the service keeps them (works while it runs): the data
directory's keys file, or the PostgreSQL gallery database when DPRIME_GALLERY_URL names one."""

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
    keys.add_argument(
        "--gallery-url",
        default=None,
        help="the service's gallery (default: $DPRIME_GALLERY_URL, else the SQLite files in the data dir)",
    )
    ksub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    p = ksub.add_parser("create", help="create a key and print it once")
    p.add_argument("--name", required=True, help="who or what uses the key")
    p.add_argument("--role", choices=["read", "admin"], default="read")
    p.add_argument("--expires-in-days", type=float, default=None, help="the key stops working after this many days")
    p.add_argument(
        "--collection",
        action="append",
        default=None,
        dest="collections",
        help="limit the key to this collection (repeat for several; default: every collection)",
    )
    p.set_defaults(handler=_create)
    p = ksub.add_parser("revoke", help="revoke a key by its id")
    p.add_argument("key_id")
    p.set_defaults(handler=_revoke)
    p = ksub.add_parser("list", help="list keys (ids, names, roles; never the keys)")
    p.set_defaults(handler=_list)


def _stores(args: argparse.Namespace) -> Any:
    from service.config import load_settings
    from service.repositories import open_stores

    overrides: dict[str, object] = {}
    if args.data_dir is not None:
        overrides["data_dir"] = args.data_dir
    if args.gallery_url is not None:
        overrides["gallery_url"] = args.gallery_url
    return open_stores(load_settings(**overrides))


def _audit(stores: Any, action: Any, target: str, details: dict[str, Any]) -> None:
    from service.audit import CLI_ACTOR

    stores.audit.record(CLI_ACTOR, action, target, None, details=details)


def _create(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime, timedelta

    expires = None if args.expires_in_days is None else datetime.now(UTC) + timedelta(days=args.expires_in_days)
    stores = _stores(args)
    try:
        info, key = stores.keys.create(args.name, args.role, expires, args.collections)
        details = {"name": info.name, "role": info.role, "expires": info.expires, "collections": info.collections}
        _audit(stores, "key.create", info.key_id, details)
    finally:
        stores.close()
    logger.info("created %s key %s for %r; it is shown only now", info.role, info.key_id, info.name)
    sys.stdout.write(key + "\n")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    stores = _stores(args)
    try:
        if not stores.keys.revoke(args.key_id):
            logger.error("no active key with id %s", args.key_id)
            return 1
        _audit(stores, "key.revoke", args.key_id, {})
    finally:
        stores.close()
    logger.info("revoked key %s", args.key_id)
    return 0


def _list(args: argparse.Namespace) -> int:
    stores = _stores(args)
    try:
        keys = stores.keys.list()
    finally:
        stores.close()
    for k in keys:
        state = f"revoked {k.revoked}" if k.revoked else ("expired" if k.expired() else "active")
        expiry = f"  expires {k.expires}" if k.expires else ""
        used = f"  last used {k.last_used or 'never'}"
        scope = f"  collections {','.join(k.collections)}" if k.collections is not None else ""
        sys.stdout.write(f"{k.key_id}  {k.role:5}  {k.name}  created {k.created}  {state}{expiry}{used}{scope}\n")
    return 0
