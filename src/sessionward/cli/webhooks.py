"""``sessionward webhooks add|list|remove|deliveries|rotate-secret|enable``: webhook endpoints.

The endpoints live beside the sessions (``--db``: the SQLite file, or a ``redis://`` /
``postgresql://`` URL); a running service delivers to them. ``add`` and ``rotate-secret``
print the signing secret once: it is never shown again.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sessionward.cli._common import CommandError, Parser, Subparsers, db_option, db_path, fmt_time
from sessionward.errors import NotFound, SessionwardError
from sessionward.signals.webhook_endpoints import KIND, create_webhook, event_kinds, rotate_secret
from sessionward.stores.consumers import ACTIVE, Consumer, ConsumerStore, open_consumer_store
from sessionward.stores.eventlog.spec import open_event_log

__all__ = ["register"]


def register(subparsers: Subparsers) -> None:
    common = Parser(add_help=False)
    db_option(common)
    common.add_argument(
        "--application", default="default", metavar="NAME",
        help="the application whose events the endpoint receives (default: default)",
    )  # fmt: skip
    webhooks = subparsers.add_parser("webhooks", help="signed webhook endpoints")
    actions = webhooks.add_subparsers(dest="action", metavar="ACTION", parser_class=Parser)
    actions.required = True

    add = actions.add_parser("add", parents=[common], help="register an endpoint")
    add.add_argument("url", metavar="URL")
    add.add_argument(
        "--event", action="append", metavar="KIND", choices=sorted(event_kinds()),
        help="an event kind to send (repeatable; default: every kind)",
    )  # fmt: skip
    add.add_argument("--description", default="", help="a note for the operators")
    add.set_defaults(handler=_add)

    listing = actions.add_parser("list", parents=[common], help="list endpoints")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=_list)

    remove = actions.add_parser("remove", parents=[common], help="remove an endpoint")
    remove.add_argument("id", metavar="ID")
    remove.set_defaults(handler=_remove)

    history = actions.add_parser("deliveries", parents=[common], help="recent delivery attempts")
    history.add_argument("id", metavar="ID")
    history.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    history.add_argument("--json", action="store_true", help="print JSON")
    history.set_defaults(handler=_deliveries)

    rotate = actions.add_parser(
        "rotate-secret", parents=[common], help="new signing secret (the old one signs 24 h more)"
    )
    rotate.add_argument("id", metavar="ID")
    rotate.set_defaults(handler=_rotate)

    enable = actions.add_parser("enable", parents=[common], help="re-enable a disabled endpoint")
    enable.add_argument("id", metavar="ID")
    enable.set_defaults(handler=_enable)


@contextmanager
def _store(args: argparse.Namespace) -> Iterator[ConsumerStore]:
    spec = db_path(args)
    if "://" not in spec and not (Path(spec).is_file() and Path(spec).stat().st_size > 0):
        raise CommandError(f"{spec} is not a sessionward database")
    try:
        store = open_consumer_store(spec)
    except SessionwardError as exc:
        raise CommandError(str(exc)) from exc
    try:
        yield store
    finally:
        store.close()


def _owned(store: ConsumerStore, args: argparse.Namespace) -> Consumer:
    found = store.get(args.id)
    if found is None or found.kind != KIND or found.application != args.application:
        raise CommandError(f"no webhook {args.id} in application {args.application}", 1)
    return found


def _add(args: argparse.Namespace) -> int:
    spec = db_path(args)
    with _store(args) as store:
        log = open_event_log(spec, create=False)
        try:
            consumer, secret = create_webhook(
                store, log, args.url, application=args.application, now=time.time(),
                kinds=args.event, description=args.description,
            )  # fmt: skip
        except SessionwardError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            log.close()
    print(f"webhook {consumer.id} -> {consumer.url}")
    print(f"signing secret (shown once, keep it with the receiver): {secret.reveal()}")
    return 0


def _row(consumer: Consumer) -> dict[str, Any]:
    return {
        "id": consumer.id,
        "url": consumer.url,
        "events": None if consumer.kinds is None else sorted(consumer.kinds),
        "state": consumer.state,
        "disabled_reason": consumer.disabled_reason,
        "failures": consumer.failures,
        "next_attempt": fmt_time(consumer.next_attempt),
        "created_at": fmt_time(consumer.created_at),
        "description": consumer.config.get("description", ""),
    }


def _list(args: argparse.Namespace) -> int:
    with _store(args) as store:
        rows = [_row(c) for c in store.consumers(args.application, KIND)]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        events = ",".join(row["events"]) if row["events"] else "all events"
        state = row["state"] + (f" ({row['disabled_reason']})" if row["disabled_reason"] else "")
        print(f"{row['id']}  {row['url']}  {events}  {state}  failures={row['failures']}")
    if not rows:
        print(f"no webhooks in application {args.application}")
    return 0


def _remove(args: argparse.Namespace) -> int:
    with _store(args) as store:
        _owned(store, args)
        store.remove(args.id)
    print(f"removed webhook {args.id}")
    return 0


def _deliveries(args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= 1000:
        raise CommandError("--limit is 1 to 1000")
    with _store(args) as store:
        _owned(store, args)
        found = store.deliveries(args.id, args.limit)
    rows = [{**d.to_dict(), "at": fmt_time(d.at)} for d in found]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        outcome = "ok" if row["ok"] else (row["error"] or "failed")
        status = row["status"] if row["status"] is not None else "-"
        print(
            f"{row['at']}  {row['message_id']}  attempt {row['attempt']}  {status}  {outcome}"
            f"  {row['latency_ms']} ms"
        )
    if not rows:
        print("no delivery attempts yet")
    return 0


def _rotate(args: argparse.Namespace) -> int:
    with _store(args) as store:
        _owned(store, args)
        try:
            secret = rotate_secret(store, args.id, now=time.time())
        except NotFound as exc:
            raise CommandError(str(exc), 1) from exc
    print(f"new signing secret (shown once): {secret.reveal()}")
    print("the previous secret keeps signing beside it for 24 hours")
    return 0


def _enable(args: argparse.Namespace) -> int:
    with _store(args) as store:
        _owned(store, args)
        store.set_state(args.id, ACTIVE, None, time.time())
    print(f"webhook {args.id} enabled")
    return 0
