"""``sessionward sessions list|revoke|revoke-user|revoke-all``: inspect and end stored sessions.

Listing every session walks the store with its ``Scan`` capability; a user's sessions come from
its ``UserIndex``; revocations go through the manager, which emits the events.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from sessionward.cli._common import (
    CommandError,
    Parser,
    Subparsers,
    check_id,
    db_option,
    db_path,
    fmt_time,
    open_existing,
)
from sessionward.core.events import RevokeReason
from sessionward.core.record import Session, SessionRecord
from sessionward.stores._sync.base import Scan, Store, UserIndex

__all__ = ["register"]

_PAGE = 1000


def register(subparsers: Subparsers) -> None:
    common = Parser(add_help=False)
    db_option(common)
    sessions = subparsers.add_parser("sessions", help="list and revoke sessions")
    actions = sessions.add_subparsers(dest="action", metavar="ACTION", parser_class=Parser)
    actions.required = True

    listing = actions.add_parser("list", parents=[common], help="list stored sessions")
    listing.add_argument("--user", metavar="USER", help="only this user's sessions")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=_list)

    revoke = actions.add_parser("revoke", parents=[common], help="end one session")
    revoke.add_argument("session_id", metavar="ID", help="public session id")
    revoke.set_defaults(handler=_revoke)

    revoke_user = actions.add_parser(
        "revoke-user", parents=[common], help="end every session of a user"
    )
    revoke_user.add_argument("user", metavar="USER")
    revoke_user.set_defaults(handler=_revoke_user)

    revoke_all = actions.add_parser(
        "revoke-all", parents=[common], help="end every session of every user"
    )
    revoke_all.add_argument("--yes", action="store_true", help="confirm: really end them all")
    revoke_all.set_defaults(handler=_revoke_all)


def _list(args: argparse.Namespace) -> int:
    with open_existing(db_path(args)) as manager:
        records = _records(manager.store, args.user)
        now = manager.clock.now()
    rows = [_describe(r, now) for r in records]
    if args.json:
        print(json.dumps(rows, indent=2))
    elif rows or args.user is None:
        _print_table(rows)
    if not rows and args.user is not None:
        print(f"sessionward: no session of user {args.user}", file=sys.stderr)
        return 1  # a filter that matched nothing; an empty database is not a failed match
    return 0


def _records(store: Store, user: str | None) -> list[SessionRecord]:
    """Every stored session (expired ones too, until purged; no internal record), by user,
    then oldest first."""
    if user is not None:
        if not isinstance(store, UserIndex):
            raise CommandError("this store cannot list a user's sessions")
        return store.list_user(user)
    if not isinstance(store, Scan):
        raise CommandError("this store cannot list every session")
    records: list[SessionRecord] = []
    after = ""
    while page := store.scan(after=after, limit=_PAGE):
        records.extend(r for r in page if not r.is_internal)
        after = page[-1].id
    records.sort(key=lambda r: (r.user_id is not None, r.user_id or "", r.created_at, r.id))
    return records


def _describe(record: SessionRecord, now: float) -> dict[str, Any]:
    session = Session(record)
    return {
        "id": record.id,
        "user_id": record.user_id,
        "anonymous": record.user_id is None,
        "status": "live" if now < record.expires_at else "expired",
        "created_at": fmt_time(record.created_at),
        "last_seen": fmt_time(record.last_seen),
        "expires_at": fmt_time(record.expires_at),
        "absolute_expires_at": fmt_time(record.absolute_expires_at),
        "auth_level": record.auth_level,
        "auth_time": fmt_time(record.auth_time),
        "scopes": sorted(session.scopes),
        "generation": record.generation,
    }


_COLUMNS = [
    ("ID", "id"),
    ("USER", "user_id"),
    ("STATUS", "status"),
    ("CREATED (UTC)", "created_at"),
    ("LAST SEEN (UTC)", "last_seen"),
    ("EXPIRES (UTC)", "expires_at"),
    ("GEN", "generation"),
]


def _print_table(rows: list[dict[str, Any]]) -> None:
    if not rows:
        print("no sessions")
        return
    cells = [[_cell(row, key) for _, key in _COLUMNS] for row in rows]
    widths = [max(len(title), *(len(c[i]) for c in cells)) for i, (title, _) in enumerate(_COLUMNS)]
    print("  ".join(title.ljust(w) for (title, _), w in zip(_COLUMNS, widths, strict=True)))
    for line in cells:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
    print(f"{len(rows)} session(s)")


def _cell(row: dict[str, Any], key: str) -> str:
    value = row[key]
    if key == "user_id" and value is None:
        return "(anonymous)"
    return str(value)


def _revoke(args: argparse.Namespace) -> int:
    session_id = check_id(args.session_id)
    with open_existing(db_path(args)) as manager:
        found = manager.revoke(session_id, reason=RevokeReason.ADMIN)
    if not found:
        print(f"sessionward: no session {session_id}", file=sys.stderr)
        return 1
    print(f"revoked session {session_id}")
    return 0


def _revoke_user(args: argparse.Namespace) -> int:
    with open_existing(db_path(args)) as manager:
        count = manager.revoke_user(args.user, reason=RevokeReason.ADMIN)
    if not count:
        print(f"sessionward: no session of user {args.user}", file=sys.stderr)
        return 1
    print(f"revoked {count} session(s) of user {args.user}")
    return 0


def _revoke_all(args: argparse.Namespace) -> int:
    path = db_path(args)
    if not args.yes:
        raise CommandError("this ends every session of every user: add --yes to confirm")
    with open_existing(path) as manager:
        count = manager.revoke_all(reason=RevokeReason.ADMIN)
    print(f"revoked all {count} session(s)")
    return 0
