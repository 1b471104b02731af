"""``sessionward events list|tail``: read the durable audit log of session events.

    sessionward --db sessions.db events list [--user U] [--session ID] [--kind K]
                                             [--since T] [--until T] [--limit N] [--json]
    sessionward --db sessions.db events tail [--limit N] [--follow] [--json]

The log lives beside the sessions: ``--db`` is the SQLite file, or ``--store`` a
``redis://`` / ``postgresql://`` URL as ``sessionward serve --store`` takes it. ``--user``
is the user id as stored: an API application's user ``alice`` of application ``shop`` is
``shop/alice`` (or pass ``--application shop --user alice``). ``--since``/``--until`` take
an ISO 8601 time (``2026-12-01T08:00``, UTC unless it says otherwise), seconds since the
epoch, or an age (``30m``, ``12h``, ``7d``: that long ago). ``list`` prints newest first; it
exits 1 when a filter matched nothing. ``tail`` prints the latest entries oldest first and,
with ``--follow``, every new one as it is written (Ctrl-C ends it).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sessionward.cli._common import (
    ENV_DB,
    CommandError,
    Parser,
    Subparsers,
    check_id,
    db_option,
    fmt_time,
    open_existing,
)
from sessionward.stores.eventlog import EventLog, EventQuery, LoggedEvent, open_event_log

__all__ = ["parse_time", "register"]

_PAGE = 500
_AGE = re.compile(r"([0-9]+(?:\.[0-9]+)?)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
_FIXED = ("id", "at", "kind", "user_id", "session_id", "application")


def register(subparsers: Subparsers) -> None:
    common = Parser(add_help=False)
    db_option(common)
    common.add_argument(
        "--store", metavar="SPEC", help="the store: a SQLite path or a redis:// / postgresql:// URL"
    )
    common.add_argument("--json", action="store_true", help="one JSON object per line")
    events = subparsers.add_parser("events", help="read the audit log of session events")
    actions = events.add_subparsers(dest="action", metavar="ACTION", parser_class=Parser)
    actions.required = True

    listing = actions.add_parser("list", parents=[common], help="events, newest first")
    listing.add_argument("--user", metavar="USER", help="only this user's events")
    listing.add_argument("--application", metavar="APP", help="only this application's events")
    listing.add_argument("--session", metavar="ID", help="only this session's events")
    listing.add_argument(
        "--kind", metavar="KIND", action="append", help="only these kinds (repeat or a,b)"
    )
    listing.add_argument("--since", metavar="TIME", help="at or after TIME")
    listing.add_argument("--until", metavar="TIME", help="before TIME")
    listing.add_argument("--limit", metavar="N", type=_count, default=50, help="default 50")
    listing.set_defaults(handler=_list)

    tail = actions.add_parser("tail", parents=[common], help="the latest events, then new ones")
    tail.add_argument("--limit", metavar="N", type=_count, default=20, help="default 20")
    tail.add_argument("--follow", "-f", action="store_true", help="keep printing new events")
    tail.add_argument("--interval", type=float, default=1.0, help=argparse.SUPPRESS)
    tail.set_defaults(handler=_tail)


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def parse_time(text: str, now: float) -> float:
    """An ISO 8601 time (UTC unless it says), epoch seconds, or an age before ``now``."""
    text = text.strip()
    age = _AGE.fullmatch(text)
    if age:
        return now - float(age[1]) * _UNITS[age[2]]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(
            f"not a time: {text[:40]!r} (use 2026-12-01T08:00, epoch seconds or 12h)"
        ) from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def _open(args: argparse.Namespace) -> EventLog:
    spec = args.store or args.db or os.environ.get(ENV_DB)
    if not spec:
        raise CommandError(f"no store given: pass --db PATH, --store URL or set {ENV_DB}")
    if "://" not in spec:
        if Path(spec).is_file() and Path(spec).stat().st_size == 0:
            raise CommandError(f"{spec} is an empty file, not a sessionward database")
        open_existing(spec).close()  # a sessionward database, never a new or foreign file
    return open_event_log(spec, create=False)


def _kinds(given: list[str] | None) -> frozenset[str] | None:
    if not given:
        return None
    return frozenset(k.strip() for item in given for k in item.split(",") if k.strip())


def _list(args: argparse.Namespace) -> int:
    now = time.time()
    user = args.user
    if user is not None and args.application is not None:
        user = f"{args.application}/{user}"
    wanted = EventQuery(
        user_id=user,
        session_id=None if args.session is None else check_id(args.session),
        application=args.application,
        kinds=_kinds(args.kind),
        since=None if args.since is None else parse_time(args.since, now),
        until=None if args.until is None else parse_time(args.until, now),
    )
    log = _open(args)
    try:
        found = _newest(log, wanted, args.limit)
    finally:
        log.close()
    for event in found:
        _print(event, args.json)
    filtered = any(
        value is not None for value in (user, args.session, args.kind, args.since, args.until)
    )
    if not found and (filtered or args.application is not None):
        print("sessionward: no event matched", file=sys.stderr)
        return 1
    return 0


def _newest(log: EventLog, wanted: EventQuery, count: int) -> list[LoggedEvent]:
    """Up to ``count`` matching events, newest first, a page at a time."""
    found: list[LoggedEvent] = []
    before = None
    while len(found) < count:
        page = log.query(
            EventQuery(
                user_id=wanted.user_id,
                session_id=wanted.session_id,
                application=wanted.application,
                kinds=wanted.kinds,
                since=wanted.since,
                until=wanted.until,
                before=before,
                limit=min(_PAGE, count - len(found)),
            )
        )
        found += page.events
        if page.next is None:
            break
        before = page.next
    return found


def _tail(args: argparse.Namespace) -> int:
    log = _open(args)
    try:
        latest = _newest(log, EventQuery(), args.limit)[::-1]
        for event in latest:
            _print(event, args.json)
        cursor = latest[-1].id if latest else None
        if cursor is None and args.follow:
            cursor = _last_id(log)
        while args.follow:
            sys.stdout.flush()
            time.sleep(args.interval)
            for event in log.read(cursor, _PAGE):
                _print(event, args.json)
                cursor = event.id
    except KeyboardInterrupt:
        return 0  # the normal end of --follow
    finally:
        log.close()
    return 0


def _last_id(log: EventLog) -> str | None:
    page = log.query(EventQuery(limit=1))
    return page.events[0].id if page.events else None


def _print(event: LoggedEvent, as_json: bool) -> None:
    if as_json:
        print(json.dumps(event.to_dict(), sort_keys=True))
        return
    parts: list[str] = [fmt_time(event.at) or "", event.kind]
    for name, value in (
        ("user", event.user_id),
        ("session", event.session_id),
        ("app", event.application),
    ):
        if value is not None:
            parts.append(f"{name}={value}")
    parts += [f"{k}={_text(v)}" for k, v in event.fields.items() if k not in _FIXED and v]
    print("  ".join(parts))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
