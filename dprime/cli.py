"""`dprime` entry point: parses arguments, then imports only the package the chosen command needs."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Sequence

from dprime import gallery_commands, keys_commands, models_commands, service_commands, training_commands
from facecore.errors import DprimeError

logger = logging.getLogger(__name__)

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (no heavy imports happen here)."""
    parser = argparse.ArgumentParser(prog="dprime", description=__doc__)
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    models_commands.register(sub)
    keys_commands.register(sub)
    gallery_commands.register(sub)
    training_commands.register(sub)
    service_commands.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one dprime command and return its exit status."""
    from facecore.logs import setup_logging

    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    handler: Handler = args.handler
    try:
        return handler(args)
    except DprimeError as exc:
        logger.error("%s", exc)
        return 2
