"""The public API is small and deliberate: any change to it must change this file too."""

from __future__ import annotations

import importlib
import inspect

import pytest

import sessionward
import sessionward.errors
import sessionward.stores

PUBLIC = [
    "AsyncMemoryStore",
    "AsyncSQLiteStore",
    "AsyncSessionManager",
    "AsyncStore",
    "Clock",
    "ConfigError",
    "DataTooLarge",
    "Event",
    "EventBus",
    "InvalidArgument",
    "InvalidToken",
    "MemoryStore",
    "Policy",
    "RequestContext",
    "RevokeReason",
    "SQLiteStore",
    "Session",
    "SessionExpired",
    "SessionLimitReached",
    "SessionManager",
    "SessionwardError",
    "StepUpRequired",
    "Store",
    "StoreCorrupt",
    "StoreError",
    "StoreUnavailable",
    "SystemClock",
    "UpdateConflict",
    "__version__",
]

STORES = [
    "AsyncBroadcast",
    "AsyncCachedStore",
    "AsyncDeleteAll",
    "AsyncMemoryStore",
    "AsyncSQLiteStore",
    "AsyncScan",
    "AsyncStore",
    "AsyncSubscription",
    "AsyncUserIndex",
    "Broadcast",
    "CachedStore",
    "DeleteAll",
    "Locality",
    "MemoryStore",
    "SQLiteStore",
    "Scan",
    "Store",
    "Subscription",
    "UserCap",
    "UserIndex",
]

ERRORS = [
    "AlreadyExists",
    "ConfigError",
    "DataTooLarge",
    "InvalidArgument",
    "InvalidProof",
    "InvalidToken",
    "NotFound",
    "RiskChallenge",
    "RiskRevoked",
    "SessionExpired",
    "SessionLimitReached",
    "SessionwardError",
    "StepUpRequired",
    "StoreCorrupt",
    "StoreError",
    "StoreUnavailable",
    "UpdateConflict",
    "VersionConflict",
]


@pytest.mark.parametrize(
    ("module", "expected"),
    [(sessionward, PUBLIC), (sessionward.stores, STORES), (sessionward.errors, ERRORS)],
    ids=["sessionward", "stores", "errors"],
)
def test_all_is_pinned(module: object, expected: list[str]) -> None:
    names = list(getattr(module, "__all__"))  # noqa: B009 - read the attribute of a module object
    assert sorted(names) == expected
    assert len(names) == len(set(names))


@pytest.mark.parametrize(
    ("module_name", "names"),
    [("sessionward", PUBLIC), ("sessionward.stores", STORES), ("sessionward.errors", ERRORS)],
)
def test_every_public_name_imports(module_name: str, names: list[str]) -> None:
    module = importlib.import_module(module_name)
    for name in names:
        assert getattr(module, name) is not None, name
    namespace: dict[str, object] = {}
    exec(f"from {module_name} import *", namespace)  # noqa: S102 - fixed, trusted text
    assert set(names) <= set(namespace)


def test_version_is_a_string() -> None:
    assert isinstance(sessionward.__version__, str)
    assert sessionward.__version__[0].isdigit()


@pytest.mark.parametrize("name", ERRORS)
def test_every_error_derives_from_the_root(name: str) -> None:
    error = getattr(sessionward.errors, name)
    assert inspect.isclass(error)
    assert issubclass(error, Exception)
    assert issubclass(error, sessionward.errors.SessionwardError)


def test_errors_exported_at_the_top_are_the_same_classes() -> None:
    for name in PUBLIC:
        value = getattr(sessionward, name)
        if inspect.isclass(value) and issubclass(value, Exception):
            assert name in ERRORS
            assert value is getattr(sessionward.errors, name)


def test_no_error_class_is_left_out_of_errors_all() -> None:
    defined = {
        name
        for name, value in vars(sessionward.errors).items()
        if inspect.isclass(value)
        and issubclass(value, BaseException)
        and value.__module__ == "sessionward.errors"
    }
    assert defined == set(ERRORS)


def test_invalid_argument_and_config_error_are_value_errors() -> None:
    assert issubclass(sessionward.InvalidArgument, ValueError)
    assert issubclass(sessionward.ConfigError, ValueError)
    assert issubclass(sessionward.SessionExpired, sessionward.InvalidToken)
