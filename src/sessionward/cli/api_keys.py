"""``sessionward api-keys``: the service's own API keys (needs only the ``service`` extra).

    sessionward api-keys create --scope validate|issue|admin [--name NAME] [--application APP]
                                [--store ...|--state ...]
    sessionward api-keys list [--json]        # never their secrets
    sessionward api-keys revoke KEY_ID

Keys live in the service state: the session SQLite file by default, or the ``--state`` file
(with a Redis or PostgreSQL store). Pass the same ``--store``/``--state``/``--config`` as the
running service: ``sessionward serve`` prints the exact command. ``create`` prints the key once
and stores only its sha256. A state file no service has opened yet gets a note on stderr: the
key is stored, but a service looking elsewhere will not know it.

JWT signing keys are another thing with their own group: ``sessionward jwt-keys``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time

from sessionward.cli._common import CommandError, Parser, Subparsers, fmt_time
from sessionward.errors import InvalidArgument, SessionwardError
from sessionward.service.config import ServiceConfig, load_config
from sessionward.service.keys import SCOPES, create_key
from sessionward.service.state import ServiceState
from sessionward.stores._sync.sqlite import SQLiteStore

__all__ = ["config_options", "hint_options", "load", "register"]


def register(subparsers: Subparsers) -> None:
    """Add the ``api-keys`` command group."""
    group = subparsers.add_parser(
        "api-keys",
        help="the service's API keys: create, list, revoke",
        description="Create, list and revoke the API keys of 'sessionward serve'.",
    )
    actions = group.add_subparsers(dest="action", metavar="ACTION", parser_class=Parser)
    actions.required = True
    create = actions.add_parser(
        "create", help="create an API key (printed once)", description="Create an API key."
    )
    create.add_argument("--scope", required=True, choices=SCOPES)
    create.add_argument("--name", default="", help="a label for the key")
    create.add_argument(
        "--application",
        default="default",
        help="the application whose sessions the key reaches (default: default)",
    )
    config_options(create)
    create.set_defaults(handler=_create)
    listing = actions.add_parser("list", help="list API keys (never their secrets)")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    config_options(listing)
    listing.set_defaults(handler=_list)
    revoke = actions.add_parser("revoke", help="revoke an API key by its id")
    revoke.add_argument("key_id", metavar="KEY_ID")
    config_options(revoke)
    revoke.set_defaults(handler=_revoke)


def config_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", help="SQLite path or redis:// / postgresql:// URL")
    parser.add_argument("--state", help="SQLite file for API keys and accounts")
    parser.add_argument("--config", metavar="FILE", help="TOML settings file")


def load(args: argparse.Namespace, **flags: object) -> ServiceConfig:
    """The service configuration from ``args`` (and the environment and ``--config``)."""
    given = {"store": args.store or getattr(args, "db", None), "state": args.state, **flags}
    try:
        return load_config(given, config_file=args.config)
    except SessionwardError as exc:
        raise CommandError(str(exc)) from None


def hint_options(config: ServiceConfig) -> str:
    """The options that make a key command open ``config``'s state file, for a printed hint.

    Only the state file matters to the key commands, so a Redis or PostgreSQL store (whose URL
    may hold a password) is never repeated: its state file is named instead."""
    parts: list[str] = []
    if config.state:
        parts += ["--state", config.state]
    elif not config.store_is_sqlite:
        parts += ["--state", config.state_path]
    elif config.store != ServiceConfig().store:
        parts += ["--store", config.store]
    return " ".join(shlex.quote(part) for part in parts)


def _open(args: argparse.Namespace) -> ServiceState:
    config = load(args)
    path = config.state_path
    existed = path == ":memory:" or os.path.exists(path)
    try:
        if config.store_is_sqlite and path == config.store:
            SQLiteStore(config.store).close()  # the session tables first: see ServiceState
        state = ServiceState(path)
    except SessionwardError as exc:
        raise CommandError(f"{path}: {exc}") from None
    if state.served_at() is None:
        what = "created" if not existed else "found"
        print(
            f"sessionward: note: {what} {path}, which no 'sessionward serve' has used yet;"
            " a service only knows the keys of its own state file: start it with"
            f" 'sessionward serve {hint_options(config) or '(defaults)'}'",
            file=sys.stderr,
        )
    return state


def _create(args: argparse.Namespace) -> int:
    state = _open(args)
    try:
        raw, row = create_key(state, args.scope, args.name, time.time(), args.application)
    except InvalidArgument as exc:
        raise CommandError(str(exc)) from None
    finally:
        state.close()
    print(
        f"created API key {row.id} (scope {row.scope}, application {row.application});"
        " it is shown only this once:"
    )
    print(raw)
    return 0


def _list(args: argparse.Namespace) -> int:
    state = _open(args)
    try:
        rows = state.list_keys()
    finally:
        state.close()
    items = [
        {
            "id": r.id,
            "scope": r.scope,
            "application": r.application,
            "name": r.name,
            "created_at": fmt_time(r.created_at),
            "revoked_at": fmt_time(r.revoked_at),
        }
        for r in rows
    ]
    if args.json:
        print(json.dumps(items, indent=2))
        return 0
    if not items:
        print("no API keys")
        return 0
    for item in items:
        status = "revoked" if item["revoked_at"] else "active"
        print(
            f"{item['id']}  {item['scope']:<8}  {item['application']:<12}  {status:<7}"
            f"  {item['created_at']}  {item['name']}"
        )
    return 0


def _revoke(args: argparse.Namespace) -> int:
    state = _open(args)
    try:
        done = state.revoke_key(args.key_id, time.time())
    finally:
        state.close()
    if not done:
        print(f"sessionward: no active API key {args.key_id}", file=sys.stderr)
        return 1
    print(f"revoked API key {args.key_id}")
    return 0
