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
    p.add_argument("--expires-in-days", type=float, default=None, help="the key stops working after this many days")
    p.set_defaults(handler=_create)
    p = ksub.add_parser("revoke", help="revoke a key by its id")
    p.add_argument("key_id")
    p.set_defaults(handler=_revoke)
    p = ksub.add_parser("list", help="list keys (ids, names, roles; never the keys)")
    p.set_defaults(handler=_list)


# Who acted, in the audit trail, when a key is changed from the command line.
CLI_ACTOR = "cli"


def _data_dir(args: argparse.Namespace) -> Path:
    import os

    return Path(args.data_dir or os.environ.get("DPRIME_DATA_DIR", "var"))


def _store(args: argparse.Namespace) -> Any:
    from service.keys import KeyStore

    return KeyStore(_data_dir(args) / "keys.sqlite3")


def _audit(args: argparse.Namespace, action: Any, target: str, details: dict[str, Any]) -> None:
    from service.audit import AuditLog

    log = AuditLog(_data_dir(args) / "audit.sqlite3")
    log.record(CLI_ACTOR, action, target, None, details=details)
    log.close()


def _create(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime, timedelta

    expires = None if args.expires_in_days is None else datetime.now(UTC) + timedelta(days=args.expires_in_days)
    info, key = _store(args).create(args.name, args.role, expires)
    _audit(args, "key.create", info.key_id, {"name": info.name, "role": info.role, "expires": info.expires})
    logger.info("created %s key %s for %r; it is shown only now", info.role, info.key_id, info.name)
    sys.stdout.write(key + "\n")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    if not _store(args).revoke(args.key_id):
        logger.error("no active key with id %s", args.key_id)
        return 1
    _audit(args, "key.revoke", args.key_id, {})
    logger.info("revoked key %s", args.key_id)
    return 0


def _list(args: argparse.Namespace) -> int:
    for k in _store(args).list():
        state = f"revoked {k.revoked}" if k.revoked else ("expired" if k.expired() else "active")
        expiry = f"  expires {k.expires}" if k.expires else ""
        used = f"  last used {k.last_used or 'never'}"
        sys.stdout.write(f"{k.key_id}  {k.role:5}  {k.name}  created {k.created}  {state}{expiry}{used}\n")
    return 0
