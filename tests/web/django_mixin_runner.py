"""Run Django's own ``SessionTestsMixin`` against ``sessionward.django`` (in a subprocess).

    python django_mixin_runner.py <dir containing sessions_tests/> [redis://...]

With a Redis URL the sessions live in that Redis server (the Redis store); by default in a
SQLite file.

The directory comes from Django's source distribution, fetched at test time by
``test_django_mixin.py``; nothing of Django's test code is kept in this repository.
Prints one JSON line with the counts, and exits non-zero on any failure.
"""

from __future__ import annotations

import json
import sys
import tempfile
import unittest
from pathlib import Path

import django
from django.conf import settings

from sessionward import SessionManager, SQLiteStore
from sessionward.stores.redis import RedisStore

#: Mixin tests that cannot apply to sessionward, with the reason (docs/django.md repeats it).
EXCLUDED: dict[str, str] = {}

MANAGER = SessionManager(
    RedisStore(sys.argv[2])
    if len(sys.argv) > 2
    else SQLiteStore(str(Path(tempfile.mkdtemp()) / "mixin.sqlite3"))
)


def main(source: str) -> int:
    sys.path.insert(0, source)
    settings.configure(
        SECRET_KEY="mixin-test-" + "k" * 40,
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "django.contrib.sessions",
            "sessions_tests",
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        SESSION_ENGINE="sessionward.django",
        SESSIONWARD_MANAGER="__main__.MANAGER",
        USE_TZ=True,
    )
    django.setup()
    from django.test import SimpleTestCase
    from django.test.utils import setup_test_environment
    from sessions_tests.tests import SessionTestsMixin  # type: ignore[import-not-found]

    from sessionward.django import SessionStore

    setup_test_environment()
    attributes: dict[str, object] = {"backend": SessionStore}
    for name, reason in EXCLUDED.items():
        attributes[name] = unittest.skip(reason)(lambda self: None)
    case = type("SessionwardSessionTests", (SessionTestsMixin, SimpleTestCase), attributes)
    suite = unittest.TestLoader().loadTestsFromTestCase(case)
    result = unittest.TextTestRunner(stream=sys.stderr, verbosity=2).run(suite)
    summary = {
        "run": result.testsRun,
        "failures": len(result.failures),
        "errors": len(result.errors),
        "skipped": len(result.skipped),
        "django": django.get_version(),
    }
    print(json.dumps(summary))
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
