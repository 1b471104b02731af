"""``sessionward jwt-keys``: create, rotate, publish and revoke JWT signing keys.

    sessionward jwt-keys generate --out keys.json [--alg ES256|EdDSA|HS256] [--kid KID]
    sessionward jwt-keys rotate keys.json [--publish-lead SECONDS] [--force]
    sessionward jwt-keys jwks keys.json
    sessionward jwt-keys list keys.json [--json]
    sessionward jwt-keys revoke keys.json KID [--yes]

The key file holds private keys and the rotation state; it is written atomically with mode
0600. Rotation takes two runs: the first publishes a *next* key (it appears in the JWKS and
verifies), a later one — at least ``--publish-lead`` seconds after, longer than any verifier
caches the JWKS — makes it sign, retires the old key and publishes a fresh next key, so from
then on every ``rotate`` is one run. No command prints private key material.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sessionward.cli._common import CommandError, Subparsers
from sessionward.clock import SystemClock
from sessionward.jwt.keys import ALGORITHMS, generate_key
from sessionward.jwt.keyset import KeySet
from sessionward.jwt.loading import load_keyset_file, save_keyset_file

__all__ = ["register"]


def _error(message: str, status: int = 2) -> Exception:
    return CommandError(message, status)


def register(subparsers: Subparsers) -> None:
    """Add the ``jwt-keys`` command group."""
    keys = subparsers.add_parser(
        "jwt-keys",
        help="manage JWT signing keys",
        description="Create, rotate, publish and revoke the JWT signing keys in a key file.",
    )
    actions = keys.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True

    generate = actions.add_parser("generate", help="create a key file with one signing key")
    generate.add_argument("--out", required=True, metavar="FILE", help="key file to create")
    generate.add_argument("--alg", choices=ALGORITHMS, default="ES256", help="default: ES256")
    generate.add_argument("--kid", help="key id (default: the RFC 7638 thumbprint)")
    generate.add_argument("--force", action="store_true", help="overwrite an existing file")
    generate.set_defaults(handler=_generate)

    rotate = actions.add_parser("rotate", help="publish a next key, or make it sign")
    rotate.add_argument("file", metavar="FILE")
    rotate.add_argument(
        "--publish-lead",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="minimum time a next key is published before it signs (default: 600)",
    )
    rotate.add_argument("--alg", choices=ALGORITHMS, help="algorithm of the new next key")
    rotate.add_argument(
        "--force", action="store_true", help="promote the next key even if published too recently"
    )
    rotate.set_defaults(handler=_rotate)

    jwks = actions.add_parser("jwks", help="print the public JWKS document")
    jwks.add_argument("file", metavar="FILE")
    jwks.set_defaults(handler=_jwks)

    listing = actions.add_parser("list", help="show the keys and their states")
    listing.add_argument("file", metavar="FILE")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(handler=_list)

    revoke = actions.add_parser("revoke", help="emergency: a key is compromised")
    revoke.add_argument("file", metavar="FILE")
    revoke.add_argument("kid", metavar="KID")
    revoke.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    revoke.set_defaults(handler=_revoke)


def _now() -> float:
    return SystemClock().now()


def _when(value: float | None) -> str | None:
    if value is None:
        return None
    return datetime.fromtimestamp(value, UTC).isoformat(timespec="seconds")


def _open(path: str, **options: Any) -> KeySet:
    if not Path(path).is_file():
        raise _error(f"no key file at {path}")
    return load_keyset_file(path, **options)


def _generate(args: argparse.Namespace) -> int:
    target = Path(args.out)
    if target.exists() and not args.force:
        raise _error(f"{target} exists; pass --force to replace it (its keys will be lost)")
    keyset = KeySet.of(generate_key(args.alg, kid=args.kid), now=_now())
    save_keyset_file(target, keyset)
    print(f"created {target} (mode 0600): {args.alg} key {keyset.signing_key.kid} signs")
    return 0


def _rotate(args: argparse.Namespace) -> int:
    now = _now()
    keyset = _open(args.file, publish_lead=args.publish_lead)
    dropped = keyset.prune(now)
    active = keyset.active
    alg = args.alg or (active.key.alg if active is not None else "ES256")
    upcoming = keyset.next
    if upcoming is None:
        fresh = generate_key(alg)
        keyset.add_next(fresh, now=now)
        save_keyset_file(args.file, keyset)
        ready = _when(keyset.ready_at())
        print(f"published next key {fresh.kid}; run 'rotate' again after {ready} to make it sign")
        return 0
    ready_at = keyset.ready_at()
    if ready_at is not None and now < ready_at and not args.force:
        raise _error(
            f"next key {upcoming.key.kid} may sign after {_when(ready_at)}"
            " (verifiers may still cache a JWKS without it); --force to promote now",
            1,
        )
    old = active.key.kid if active is not None else None
    keyset.rotate(now=now, next_key=generate_key(alg), force=args.force)
    save_keyset_file(args.file, keyset)
    retired = next((e for e in keyset.entries if e.key.kid == old), None)
    following = keyset.next
    print(f"{upcoming.key.kid} now signs; {following.key.kid if following else '-'} is next")
    if retired is not None:
        print(f"{old} retired; verifies until {_when(retired.verify_until)}")
    for kid in dropped:
        print(f"{kid} dropped (its last token has expired)")
    return 0


def _jwks(args: argparse.Namespace) -> int:
    keyset = _open(args.file)
    keyset.prune(_now())
    print(json.dumps(keyset.jwks(), indent=2))
    return 0


def _list(args: argparse.Namespace) -> int:
    keyset = _open(args.file)
    rows = [
        {
            "kid": e.key.kid,
            "alg": e.key.alg,
            "state": str(e.state),
            "since": _when(e.since),
            "verify_until": _when(e.verify_until),
        }
        for e in keyset.entries
    ]
    revoked = [{"kid": k, "revoked_at": _when(v)} for k, v in keyset.revoked.items()]
    if args.json:
        print(json.dumps({"keys": rows, "revoked": revoked}, indent=2))
        return 0
    for row in rows:
        until = f"  verifies until {row['verify_until']}" if row["verify_until"] else ""
        print(f"{row['state']:8} {row['alg']:6} {row['kid']}  since {row['since']}{until}")
    for item in revoked:
        print(f"{'revoked':8} {'':6} {item['kid']}  at {item['revoked_at']}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    keyset = _open(args.file)
    if keyset.get(args.kid) is None:
        raise _error(f"no key {args.kid!r} in {args.file}", 1)
    if not args.yes:
        raise _error(
            "revoking invalidates every token the key signed, at once; pass --yes to confirm"
        )
    keyset.revoke(args.kid, now=_now())
    save_keyset_file(args.file, keyset)
    active = keyset.active
    print(f"revoked {args.kid}; every token it signed is now rejected")
    if active is None:
        print("no key signs now: run 'sessionward jwt-keys rotate' twice with --force")
    else:
        print(f"{active.key.kid} signs")
    return 0
