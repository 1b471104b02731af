"""``sessionward tour``: the main job, step by step, on a SQLite file (created if needed).

Tokens are shown masked (:func:`~sessionward.cli._common.mask_token`), never whole.
"""

from __future__ import annotations

import argparse

from sessionward._version import __version__
from sessionward.cli._common import Subparsers, fmt_time, mask_token
from sessionward.core.events import Event, EventBus
from sessionward.errors import InvalidToken
from sessionward.manager._sync.manager import SessionManager
from sessionward.stores._sync.sqlite import SQLiteStore

__all__ = ["TOUR_DB", "register"]

TOUR_DB = "sessionward.db"


def register(subparsers: Subparsers) -> None:
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
        f"   valid: user {current.user_id}, idle deadline {fmt_time(current.expires_at)},"
        f" absolute {fmt_time(current.absolute_expires_at)}"
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
        print(f"   {device.id}  created {fmt_time(device.created_at)}")

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
