"""``sessionward gc``: delete expired sessions."""

from __future__ import annotations

import argparse

from sessionward.cli._common import Parser, Subparsers, db_option, db_path, open_existing

__all__ = ["register"]


def register(subparsers: Subparsers) -> None:
    common = Parser(add_help=False)
    db_option(common)
    gc = subparsers.add_parser("gc", parents=[common], help="delete expired sessions")
    gc.set_defaults(handler=_gc)


def _gc(args: argparse.Namespace) -> int:
    with open_existing(db_path(args)) as manager:
        count = manager.purge_expired()
    print(f"deleted {count} expired session(s)")
    return 0
