"""What every command group shares: the user-facing error, the parser class, and opening the
session database. Groups import from here, never from ``sessionward.cli`` itself."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn, TypeAlias

from sessionward.core import token as tokens
from sessionward.core.events import EventBus
from sessionward.errors import StoreError
from sessionward.manager._sync.manager import SessionManager
from sessionward.stores._sync.sqlite import SQLiteStore

__all__ = [
    "ENV_DB",
    "CommandError",
    "Handler",
    "Parser",
    "Subparsers",
    "check_id",
    "db_option",
    "db_path",
    "fmt_time",
    "mask_token",
    "open_existing",
]


class Parser(argparse.ArgumentParser):
    """Usage errors become one line on stderr (argparse would print usage plus a message).
    Subparsers inherit the class.

    argparse checks for a missing subcommand before it looks at unknown options, so
    ``sessionward --bogus`` would read "arguments are required: COMMAND": an unknown option
    is reported first instead."""

    _given: Sequence[str] = ()

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        self._given = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        if message.startswith("the following arguments are required"):
            unknown = self._unknown_options()
            if unknown:
                message = f"unrecognized arguments: {' '.join(unknown)}"
        raise CommandError(f"{message} (see '{self.prog} --help')")

    def _unknown_options(self) -> list[str]:
        known = {option: action for action in self._actions for option in action.option_strings}
        out: list[str] = []
        words = iter(self._given)
        for word in words:
            if word == "--" or not word.startswith("-") or word == "-":
                break  # a subcommand or an operand: what follows is not this parser's to judge
            name, has_value, _ = word.partition("=")
            action = known.get(name)
            if action is None:
                out.append(word)
            elif action.nargs != 0 and not has_value:
                next(words, None)  # the option's value
        return out


#: What a ``register`` function receives (argparse's own subparsers action).
Subparsers: TypeAlias = "argparse._SubParsersAction[Parser]"
Handler = Callable[[argparse.Namespace], int]
ENV_DB = "SESSIONWARD_DB"


class CommandError(Exception):
    """A user-facing failure: printed as one line on stderr, exit status ``status``."""

    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(message)
        self.status = status


def db_option(parser: argparse.ArgumentParser, *, top: bool = False) -> None:
    """``--db``. SUPPRESS on a subcommand's copy: a ``--db`` given before the subcommand is
    not overwritten."""
    parser.add_argument(
        "--db",
        metavar="PATH",
        default=None if top else argparse.SUPPRESS,
        help=f"SQLite database file (default: ${ENV_DB})",
    )


def db_path(args: argparse.Namespace) -> str:
    path = args.db or os.environ.get(ENV_DB)
    if not path:
        raise CommandError(f"no database given: pass --db PATH or set {ENV_DB}")
    return str(path)


def open_existing(path: str) -> SessionManager:
    """A manager on an existing sessionward database (never creates or adopts a file)."""
    if Path(path).is_file() and Path(path).stat().st_size == 0:
        # SQLite treats an empty file as an empty database; creating our schema in it would
        # be a write nobody asked for.
        raise CommandError(f"{path} is an empty file, not a sessionward database")
    try:
        store = SQLiteStore(path, create=False)
    except StoreError as exc:
        message = str(exc)
        raise CommandError(message if path in message else f"{path}: {message}") from exc
    return SessionManager(store, events=EventBus([]))


def fmt_time(value: float | None) -> str | None:
    if value is None:
        return None
    return datetime.fromtimestamp(value, tz=UTC).isoformat(timespec="seconds")


def check_id(value: str) -> str:
    """``value`` if it is a public session id; a clear error (never echoing a token) if not."""
    if tokens.is_session_id(value):
        return value
    if value.startswith(tokens.PREFIX):
        # Never echo it: it is probably a whole token, secret included.
        raise CommandError(
            "that looks like a whole token; pass only its public session id"
            " (16 characters, shown by 'sessions list')"
        )
    raise CommandError(
        f"not a session id ({len(value)} characters given; a session id is 16 characters"
        " of A-Z, a-z, 0-9, '_' and '-')"
    )


def mask_token(token: str | None) -> str:
    """How the command shows a token: its prefix and its length, never the secret part."""
    if token is None:
        return "(none)"
    return f"{token[: len(tokens.PREFIX)]}…({len(token)} chars)"
