"""`dprime verify|enroll|identify`: ask a running server (--url or $DPRIME_URL, --key or $DPRIME_API_KEY)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facecore.errors import DprimeError

if TYPE_CHECKING:
    from dprime.client import DprimeClient


def register(sub: Any) -> None:
    """Add the commands that talk to a server."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=None, help="the server (default: $DPRIME_URL or http://127.0.0.1:8000)")
    common.add_argument("--key", default=None, help="an API key (default: $DPRIME_API_KEY)")
    common.add_argument("--json", action="store_true", help="print the full JSON answer instead of a summary")
    p = sub.add_parser("verify", parents=[common], help="same person, different people or uncertain (server)")
    p.add_argument("image_a", type=Path)
    p.add_argument("image_b", type=Path, nargs="?", help="the photo to compare with (or --identity)")
    p.add_argument("--identity", default=None, help="compare with this enrolled identity id instead")
    p.add_argument("--operating-point", default=None)
    p.set_defaults(handler=_verify)
    p = sub.add_parser("enroll", parents=[common], help="enroll a person from several photos (server, admin key)")
    p.add_argument("name")
    p.add_argument("images", type=Path, nargs="+")
    p.add_argument("--metadata", default=None, help="a JSON object stored with the identity")
    p.set_defaults(handler=_enroll)
    p = sub.add_parser("identify", parents=[common], help="who is this among the enrolled (server)")
    p.add_argument("image", type=Path)
    p.add_argument("-k", type=int, default=5, help="candidates to list (default 5)")
    p.set_defaults(handler=_identify)


def _client(args: argparse.Namespace) -> DprimeClient:
    from dprime.client import DEFAULT_URL, DprimeClient

    key = args.key or os.environ.get("DPRIME_API_KEY")
    if not key:
        raise DprimeError("no API key: pass --key or set DPRIME_API_KEY (`dprime keys create` makes one)")
    return DprimeClient(args.url or os.environ.get("DPRIME_URL", DEFAULT_URL), key)


def _write(text: str) -> None:
    # Command output (not a log line) goes to stdout so it can be piped.
    sys.stdout.write(text + "\n")


def _verify(args: argparse.Namespace) -> int:
    if (args.image_b is None) == (args.identity is None):
        raise DprimeError("give a second photo or --identity ID, not both and not neither")
    with _client(args) as dp:
        r = dp.verify(args.image_a, args.image_b, identity_id=args.identity, operating_point=args.operating_point)
    if args.json:
        _write(r.model_dump_json(indent=2))
        return 0
    _write(
        f"{r.decision}  cosine {r.cosine:.4f}  (match at >= {r.thresholds.accept:.4f}, non_match below "
        f"{r.thresholds.reject:.4f})  log10 LR {r.log10_lr:.2f}"
    )
    _write(
        f"band {r.band.name}: FAR {r.band.far:.2g} (target {r.band.target_far:g}), miss bound {r.band.miss_bound:g}; "
        f"kappa {r.faces[0].kappa:.2f} / {r.faces[1].kappa:.2f}; model {r.model_id}"
    )
    if r.reason:
        _write(f"why uncertain: {r.reason}")
    return 0


def _enroll(args: argparse.Namespace) -> int:
    with _client(args) as dp:
        r = dp.enroll(args.name, args.images, metadata=args.metadata)
    if args.json:
        _write(r.model_dump_json(indent=2))
        return 0
    _write(f"enrolled {r.identity.name} as {r.identity.id}: {len(r.accepted)} photo(s) accepted")
    for a in r.accepted:
        _write(f"  accepted {a.filename}: face {a.face_id}, kappa {a.kappa:.2f}")
    for rej in r.rejected:
        _write(f"  rejected {rej.filename}: {rej.code}: {rej.message}")
    return 0


def _identify(args: argparse.Namespace) -> int:
    with _client(args) as dp:
        r = dp.search(args.image, k=args.k)
    if args.json:
        _write(r.model_dump_json(indent=2))
        return 0
    head = f"{r.result}: {r.hits[0].name} ({r.hits[0].identity_id})" if r.result == "match" else r.result
    _write(
        f"{head}  (match at >= {r.thresholds.accept:.4f} for {r.gallery_faces} enrolled faces, FPIR {r.fpir.target:g})"
    )
    for rank, hit in enumerate(r.hits, 1):
        _write(f"  {rank}. {hit.name}  cosine {hit.cosine:.4f}  {hit.decision}  {hit.identity_id}")
    if r.reason:
        _write(f"why uncertain: {r.reason}")
    return 0
