"""The ``sessionward`` command: inspect and manage sessions in a SQLite file, or take the tour.

    sessionward --version
    sessionward --db sessions.db sessions list [--user U] [--json]
    sessionward --db sessions.db sessions revoke ID
    sessionward --db sessions.db sessions revoke-user U
    sessionward --db sessions.db sessions revoke-all --yes
    sessionward --db sessions.db gc
    sessionward --db sessions.db events list [--user U] [--kind K] [--since T] [--json]
    sessionward --db sessions.db events tail [--follow]
    sessionward tour [--db PATH]
    sessionward serve | demo | api-keys ... # the service (extra 'service')
    sessionward jwt-keys ...                # JWT signing keys (extra 'jwt')

``--db`` may also follow the subcommand, or come from ``SESSIONWARD_DB``. Management commands
never create a database: a missing file is an error. Exit status: 0 done, 1 nothing matched
(``revoke`` of an unknown id, ``revoke-user`` or ``list --user`` of a user without sessions,
``api-keys revoke`` of an unknown key, ``events list`` whose filters matched no event),
2 error (one line on stderr, never a traceback; set
``SESSIONWARD_DEBUG=1`` to see the traceback of an unexpected failure).

Adding commands: every subcommand group is a ``register(subparsers)`` function listed in
:data:`GROUPS` as ``"module:function"`` (imported only when the command line is parsed). It
adds its parsers and sets ``handler`` (``(args) -> int``) with ``set_defaults``. Groups take
what they share from ``sessionward.cli._common``. The command never prints a raw token: the
tour shows them masked (:func:`mask_token`).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sessionward._version import __version__
from sessionward.cli._common import (
    CommandError,
    Handler,
    Parser,
    Subparsers,
    db_option,
    mask_token,
)
from sessionward.errors import SessionwardError

__all__ = [
    "GROUPS",
    "CommandError",
    "CommandGroup",
    "Parser",
    "Subparsers",
    "main",
    "mask_token",
]


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
    CommandGroup("sessions", "sessionward.cli.sessions:register", "list and revoke sessions"),
    CommandGroup("gc", "sessionward.cli.gc:register", "delete expired sessions"),
    CommandGroup("events", "sessionward.cli.events:register", "read the audit log of events"),
    CommandGroup("webhooks", "sessionward.cli.webhooks:register", "signed webhook endpoints"),
    CommandGroup("tour", "sessionward.cli.tour:register", "walk through the main job"),
    CommandGroup(
        "serve", "sessionward.cli.serve:register", "run the service and the demo", "service"
    ),
    CommandGroup(
        "api-keys", "sessionward.cli.api_keys:register", "the service's API keys", "service"
    ),
    CommandGroup("jwt-keys", "sessionward.cli.jwt:register", "manage JWT signing keys", "jwt"),
    CommandGroup("risk", "sessionward.cli.risk:register", "measure hijack detection", "risk"),
    CommandGroup("profiles", "sessionward.cli.profiles:register", "client profiles", "audit"),
    CommandGroup("audit", "sessionward.cli.audit:register", "audit a site's sessions", "audit"),
]


# -- parsing -----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="sessionward",
        description="Session tokens done right: manage the sessions in a SQLite file.",
        epilog=(
            "Exit status: 0 done, 1 nothing matched (an unknown session id or API key, a user"
            " without sessions), 2 error."
        ),
    )
    parser.add_argument("--version", action="version", version=f"sessionward {__version__}")
    db_option(parser, top=True)
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
