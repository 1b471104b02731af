"""The ``sessionward`` command: inspect and manage sessions in a SQLite file, or take the tour.

    sessionward --version
    sessionward --db sessions.db sessions list [--user U] [--json]
    sessionward --db sessions.db sessions revoke ID
    sessionward --db sessions.db sessions revoke-user U
    sessionward --db sessions.db gc
    sessionward tour [--db PATH]

``--db`` may also follow the subcommand, or come from ``SESSIONWARD_DB``. Management commands
never create a database: a missing file is an error. Exit status: 0 done, 1 nothing matched
(``revoke`` of an unknown id), 2 error (one line on stderr, never a traceback; set
``SESSIONWARD_DEBUG=1`` to see the traceback of an unexpected failure).

Adding commands: every subcommand group is a ``register(subparsers)`` function listed in
:data:`GROUPS` as ``"module:function"`` (imported only when the command line is parsed). It
adds its parsers and sets ``handler`` (``(args) -> int``) with ``set_defaults``. The command
never prints a raw token: the tour shows them masked (:func:`mask_token`).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sqlite3
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, TypeAlias

from sessionward._version import __version__
from sessionward.core import token as tokens
from sessionward.core.events import Event, EventBus, RevokeReason
from sessionward.core.record import FIELDS, Session, SessionRecord
from sessionward.errors import InvalidToken, SessionwardError, StoreCorrupt, StoreError
from sessionward.manager._sync.manager import SessionManager
from sessionward.stores._sync.sqlite import SQLiteStore

__all__ = [
    "GROUPS",
    "CommandError",
    "CommandGroup",
    "Parser",
    "Subparsers",
    "main",
    "mask_token",
]

#: What a ``register`` function receives (argparse's own subparsers action).
Subparsers: TypeAlias = "argparse._SubParsersAction[Parser]"
Handler = Callable[[argparse.Namespace], int]
ENV_DB = "SESSIONWARD_DB"
TOUR_DB = "sessionward.db"


class CommandError(Exception):
    """A user-facing failure: printed as one line on stderr, exit status ``status``."""

    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class CommandGroup:
    """A subcommand (group) of ``sessionward``.

    ``target`` is ``"module:function"``; the function takes the subparsers object and adds the
    command ``name``. ``extra`` names the pip extra the module needs: when its import fails
    for a missing third-party module, ``name`` still appears and says what to install.
    """

    name: str
    target: str
    help: str
    extra: str | None = None


#: The registry. To add a group, append an entry (keep the order users should see).
GROUPS: list[CommandGroup] = [
    CommandGroup("sessions", "sessionward.cli:register_sessions", "list and revoke sessions"),
    CommandGroup("gc", "sessionward.cli:register_gc", "delete expired sessions"),
    CommandGroup("tour", "sessionward.cli:register_tour", "walk through the main job"),
    CommandGroup(
        "serve", "sessionward.cli.serve:register", "service, demo and API keys", "service"
    ),
    CommandGroup("keys", "sessionward.cli.jwt:register", "manage JWT signing keys", "jwt"),
    CommandGroup("risk", "sessionward.cli.risk:register", "measure hijack detection", "risk"),
]


# -- parsing -----------------------------------------------------------------------------------


class Parser(argparse.ArgumentParser):
    """Usage errors become one line on stderr (argparse would print usage plus a message).
    Subparsers inherit the class."""

    def error(self, message: str) -> NoReturn:
        raise CommandError(f"{message} (see '{self.prog} --help')")


def _db_option(parser: argparse.ArgumentParser, *, top: bool = False) -> None:
    # SUPPRESS on the subcommand copy: a --db before the subcommand is not overwritten.
    parser.add_argument(
        "--db",
        metavar="PATH",
        default=None if top else argparse.SUPPRESS,
        help=f"SQLite database file (default: ${ENV_DB})",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="sessionward",
        description="Session tokens done right: manage the sessions in a SQLite file.",
        epilog="Exit status: 0 done, 1 nothing matched, 2 error.",
    )
    parser.add_argument("--version", action="version", version=f"sessionward {__version__}")
    _db_option(parser, top=True)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    subparsers.required = True
    for group in GROUPS:
        _register(group, subparsers)
    return parser


def _register(group: CommandGroup, subparsers: Subparsers) -> None:
    """Add one group. A group that cannot be loaded breaks only its own commands: they say
    why (what to install, or the error) instead of taking every other command down."""
    module_name, _, function = group.target.partition(":")
    try:
        module = importlib.import_module(module_name)
        register: Callable[[Subparsers], None] = getattr(module, function)
        register(subparsers)
    except ModuleNotFoundError as exc:
        if group.extra is not None and not (exc.name or "").startswith("sessionward"):
            missing = exc.name or "a dependency"
            _unavailable(
                group,
                subparsers,
                f"'{group.name}' needs the optional dependency {missing}:"
                f" pip install 'sessionward[{group.extra}]'",
            )
            return
        _broken(group, subparsers, exc)
    except Exception as exc:
        _broken(group, subparsers, exc)


def _broken(group: CommandGroup, subparsers: Subparsers, exc: Exception) -> None:
    if os.environ.get("SESSIONWARD_DEBUG"):
        raise exc
    message = (
        f"the '{group.name}' commands ({group.target}) failed to load: {type(exc).__name__}: {exc}"
    )
    if group.name in subparsers.choices:  # it got as far as a clash: nowhere to report it
        print(f"sessionward: warning: {message}", file=sys.stderr)
        return
    _unavailable(group, subparsers, message)


def _unavailable(group: CommandGroup, subparsers: Subparsers, message: str) -> None:
    parser = subparsers.add_parser(group.name, help=f"{group.help} (unavailable)")
    parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)

    def unavailable(args: argparse.Namespace) -> int:
        raise CommandError(message)

    parser.set_defaults(handler=unavailable)


# -- opening the database ----------------------------------------------------------------------


def _db_path(args: argparse.Namespace) -> str:
    path = args.db or os.environ.get(ENV_DB)
    if not path:
        raise CommandError(f"no database given: pass --db PATH or set {ENV_DB}")
    return str(path)


def _open_existing(path: str) -> SessionManager:
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


def _fmt_time(value: float | None) -> str | None:
    if value is None:
        return None
    return datetime.fromtimestamp(value, tz=UTC).isoformat(timespec="seconds")


def _check_id(value: str) -> str:
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


# -- sessions ----------------------------------------------------------------------------------


def register_sessions(subparsers: Subparsers) -> None:
    common = Parser(add_help=False)
    _db_option(common)
    sessions = subparsers.add_parser("sessions", help="list and revoke sessions")
    actions = sessions.add_subparsers(dest="action", metavar="ACTION", parser_class=Parser)
    actions.required = True

    listing = actions.add_parser("list", parents=[common], help="list stored sessions")
    listing.add_argument("--user", metavar="USER", help="only this user's sessions")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=_sessions_list)

    revoke = actions.add_parser("revoke", parents=[common], help="end one session")
    revoke.add_argument("session_id", metavar="ID", help="public session id")
    revoke.set_defaults(handler=_sessions_revoke)

    revoke_user = actions.add_parser(
        "revoke-user", parents=[common], help="end every session of a user"
    )
    revoke_user.add_argument("user", metavar="USER")
    revoke_user.set_defaults(handler=_sessions_revoke_user)


def _all_records(path: str) -> list[SessionRecord]:
    """Every stored record, read through a read-only connection.

    The store interface lists per user only; this admin-only full listing reads the schema the
    store has just validated (same column list), and maps SQLite errors onto ours.
    """
    uri = Path(path).resolve().as_uri() + "?mode=ro"
    query = f"SELECT {', '.join(FIELDS)} FROM sessions ORDER BY user_id, created_at, id"  # noqa: S608
    try:
        conn = sqlite3.connect(uri, uri=True)
        try:
            rows = conn.execute(query).fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StoreCorrupt(f"cannot read sessions: {exc}") from exc
    return [SessionRecord._make(row) for row in rows]


def _sessions_list(args: argparse.Namespace) -> int:
    path = _db_path(args)
    manager = _open_existing(path)
    try:
        if args.user is not None:
            if not isinstance(manager.store, SQLiteStore):  # pragma: no cover - opened above
                raise StoreCorrupt("not a SQLite store")
            records = manager.store.list_user(args.user)
        else:
            records = _all_records(path)
    finally:
        manager.close()
    now = manager.clock.now()
    rows = [_describe(r, now) for r in records]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        _print_table(rows)
    return 0


def _describe(record: SessionRecord, now: float) -> dict[str, Any]:
    session = Session(record)
    return {
        "id": record.id,
        "user_id": record.user_id,
        "anonymous": record.user_id is None,
        "status": "live" if now < record.expires_at else "expired",
        "created_at": _fmt_time(record.created_at),
        "last_seen": _fmt_time(record.last_seen),
        "expires_at": _fmt_time(record.expires_at),
        "absolute_expires_at": _fmt_time(record.absolute_expires_at),
        "auth_level": record.auth_level,
        "auth_time": _fmt_time(record.auth_time),
        "scopes": sorted(session.scopes),
        "generation": record.generation,
    }


def _print_table(rows: list[dict[str, Any]]) -> None:
    if not rows:
        print("no sessions")
        return
    columns = [
        ("ID", "id"),
        ("USER", "user_id"),
        ("STATUS", "status"),
        ("CREATED (UTC)", "created_at"),
        ("LAST SEEN (UTC)", "last_seen"),
        ("EXPIRES (UTC)", "expires_at"),
        ("GEN", "generation"),
    ]
    cells = [[_cell(row, key) for _, key in columns] for row in rows]
    widths = [max(len(title), *(len(c[i]) for c in cells)) for i, (title, _) in enumerate(columns)]
    print("  ".join(title.ljust(w) for (title, _), w in zip(columns, widths, strict=True)))
    for line in cells:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
    print(f"{len(rows)} session(s)")


def _cell(row: dict[str, Any], key: str) -> str:
    value = row[key]
    if key == "user_id" and value is None:
        return "(anonymous)"
    return str(value)


def _sessions_revoke(args: argparse.Namespace) -> int:
    session_id = _check_id(args.session_id)
    manager = _open_existing(_db_path(args))
    with manager:
        found = manager.revoke(session_id, reason=RevokeReason.ADMIN)
    if not found:
        print(f"sessionward: no session {session_id}", file=sys.stderr)
        return 1
    print(f"revoked session {session_id}")
    return 0


def _sessions_revoke_user(args: argparse.Namespace) -> int:
    manager = _open_existing(_db_path(args))
    with manager:
        count = manager.revoke_user(args.user, reason=RevokeReason.ADMIN)
    print(f"revoked {count} session(s) of user {args.user}")
    return 0


# -- gc ----------------------------------------------------------------------------------------


def register_gc(subparsers: Subparsers) -> None:
    common = Parser(add_help=False)
    _db_option(common)
    gc = subparsers.add_parser("gc", parents=[common], help="delete expired sessions")
    gc.set_defaults(handler=_gc)


def _gc(args: argparse.Namespace) -> int:
    manager = _open_existing(_db_path(args))
    with manager:
        count = manager.purge_expired()
    print(f"deleted {count} expired session(s)")
    return 0


# -- tour --------------------------------------------------------------------------------------


def mask_token(token: str | None) -> str:
    """How the command shows a token: its prefix and its length, never the secret part."""
    if token is None:
        return "(none)"
    return f"{token[: len(tokens.PREFIX)]}…({len(token)} chars)"


def register_tour(subparsers: Subparsers) -> None:
    tour = subparsers.add_parser(
        "tour",
        help="walk through the main job on a SQLite file",
        description="Anonymous session with a cart, login, validation, rotation and logout"
        " everywhere, on the embedded SQLite store. Creates the file if needed.",
    )
    tour.add_argument(
        "--db", metavar="PATH", default=argparse.SUPPRESS, help=f"default: ./{TOUR_DB}"
    )
    tour.set_defaults(handler=_tour)


def _tour(args: argparse.Namespace) -> int:
    path = args.db or TOUR_DB
    events = EventBus([_print_event])
    with SessionManager(SQLiteStore(path), events=events) as manager:
        _walk(manager, path)
    return 0


def _print_event(event: Event) -> None:
    fields = {k: v for k, v in event.to_dict().items() if k not in ("kind", "at") and v}
    detail = " ".join(f"{k}={v}" for k, v in fields.items())
    print(f"      event: {event.kind} {detail}")


def _step(number: int, text: str) -> None:
    print(f"\n{number}. {text}")


def _outcome(manager: SessionManager, token: str | None) -> str:
    """What validating ``token`` does now, in words."""
    try:
        manager.validate(token)
    except InvalidToken as exc:
        return f"rejected ({exc.reason})"
    return "accepted"


def _walk(manager: SessionManager, path: str) -> None:
    policy = manager.policy
    print(f"sessionward {__version__} tour on {path} (SQLite, WAL)")
    print(
        f"policy: idle {policy.idle_timeout / 60:g} min,"
        f" absolute {policy.absolute_timeout / 3600:g} h,"
        f" rotation grace {policy.rotation_grace:g} s. Tokens are shown masked."
    )

    _step(1, "A visitor arrives: anonymous session, puts a book in the cart")
    anonymous = manager.issue(data={"cart": ["book"]})
    print(f"   session {anonymous.id}  token {mask_token(anonymous.token)}")
    cart = manager.update_data(anonymous, lambda data: data["cart"].append("pen"))
    print(f"   cart now {cart.data['cart']}")

    _step(2, "The visitor logs in as alice: new session, cart kept, anonymous token killed")
    laptop = manager.issue("alice", previous=anonymous)
    print(f"   session {laptop.id}  token {mask_token(laptop.token)}  cart {laptop.data['cart']}")
    print(f"   old anonymous token: {_outcome(manager, anonymous.token)}  (fixation defence)")

    _step(3, "Each request validates the token")
    current = manager.validate(laptop.token)
    print(
        f"   valid: user {current.user_id}, idle deadline {_fmt_time(current.expires_at)},"
        f" absolute {_fmt_time(current.absolute_expires_at)}"
    )
    print(f"   tampered token: {_outcome(manager, _tampered(laptop.token))}")

    _step(4, "Rotation: new secret, same public id; the old one works only in the grace window")
    rotated = manager.rotate(current)
    print(f"   session {rotated.id}  new token {mask_token(rotated.token)}")
    print(
        f"   old token within {policy.rotation_grace:g} s: {_outcome(manager, laptop.token)}"
        " (parallel requests are not logged out);"
        " presented later, it revokes the session as stolen"
    )

    _step(5, "alice also logs in on her phone (and bob on his laptop); alice's devices:")
    phone = manager.issue("alice")
    bob = manager.issue("bob")
    for device in manager.list_user("alice"):
        print(f"   {device.id}  created {_fmt_time(device.created_at)}")

    _step(6, "alice logs out everywhere")
    count = manager.revoke_user("alice")
    print(f"   ended {count} session(s)")
    print(f"   alice's laptop token: {_outcome(manager, rotated.token)}")
    print(f"   alice's phone token:  {_outcome(manager, phone.token)}")
    print(f"   bob's token:          {_outcome(manager, bob.token)}")
    print(f"\nDone. bob's session {bob.id} stays in {path} (idle expiry in 30 min); see it with")
    print(f"   sessionward --db {path} sessions list")


def _tampered(token: str | None) -> str:
    if token is None:  # pragma: no cover - issue always returns a token
        return ""
    last = "A" if token[-1] != "A" else "B"
    return token[:-1] + last


# -- running -----------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sessionward`` console script; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
        handler: Handler = args.handler
        return handler(args)
    except CommandError as exc:
        return _fail(str(exc), exc.status)
    except BrokenPipeError:
        _silence_stdout()  # the reader went away (``| head``): not an error
        return 0
    except SessionwardError as exc:
        return _fail(str(exc) or type(exc).__name__, 2)
    except OSError as exc:
        return _fail(f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""), 2)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except Exception as exc:
        if os.environ.get("SESSIONWARD_DEBUG"):
            raise
        return _fail(f"internal error ({type(exc).__name__}); rerun with SESSIONWARD_DEBUG=1", 2)


def _fail(message: str, status: int) -> int:
    try:
        sys.stdout.flush()  # keep stdout and stderr in order on a terminal
    except BrokenPipeError:
        _silence_stdout()
    print(f"sessionward: error: {message}", file=sys.stderr)
    return status


def _silence_stdout() -> None:
    """After a closed pipe (``sessionward sessions list | head``), drop further output."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
