"""Subject matching of Shared Signals streams (sessionward.signals.subjects), pure: the
SSF 1.0 §8.1.3.1 rules on the spec's own examples, the subjects our SETs carry, the
email-as-user-id rule, and the ALL/NONE lists."""

from __future__ import annotations

from typing import Any

import pytest

from sessionward.errors import InvalidArgument
from sessionward.signals.subjects import (
    MAX_SUBJECTS,
    added,
    carries,
    check_subject,
    matches,
    removed,
)

ISS = "https://sessions.example"


def iss_sub(sub: str, iss: str = ISS) -> dict[str, str]:
    return {"format": "iss_sub", "iss": iss, "sub": sub}


def opaque(value: str) -> dict[str, str]:
    return {"format": "opaque", "id": value}


def email(address: str) -> dict[str, str]:
    return {"format": "email", "email": address}


def complex_(**members: Any) -> dict[str, Any]:
    return {"format": "complex", **members}


SESSION_EVENT = complex_(session=opaque("s1"), user=iss_sub("jdoe@example.com"))


def test_the_specs_complex_examples() -> None:
    # A less restrictive subject matches; a more restrictive one too (a member missing on
    # one side does not count); a member that differs does not.
    tenant = opaque("example-a38h4792-uw2")
    event = complex_(tenant=tenant, user=email("jdoe@example.com"))
    assert matches(complex_(tenant=tenant), event, "shop")
    more = complex_(user=email("jdoe@example.com"), device=iss_sub("thumb"))
    assert matches(more, complex_(user=email("jdoe@example.com")), "shop")
    assert not matches(
        complex_(user=email("jdoe@example.com"), session=opaque("a")),
        complex_(user=email("jdoe@example.com"), session=opaque("b")),
        "shop",
    )


def test_simple_subjects_match_the_same_subject_or_a_member() -> None:
    assert matches(iss_sub("jdoe@example.com"), SESSION_EVENT, "shop")
    assert matches(opaque("s1"), SESSION_EVENT, "shop")
    assert not matches(opaque("s2"), SESSION_EVENT, "shop")
    assert not matches(iss_sub("jdoe@example.com", "https://other.example"), SESSION_EVENT, "shop")
    assert matches(iss_sub("bob"), iss_sub("bob"), "shop")  # credential-change: the user alone
    assert matches(complex_(user=iss_sub("bob")), iss_sub("bob"), "shop")


def test_an_email_is_the_user_whose_id_is_that_address() -> None:
    assert matches(check_subject(email("JDoe@Example.com")), SESSION_EVENT, "shop")
    assert matches(complex_(user=check_subject(email("jdoe@EXAMPLE.com"))), SESSION_EVENT, "shop")
    assert not matches(email("other@example.com"), SESSION_EVENT, "shop")
    # Only for the user: a device's iss_sub is never an address.
    device_event = complex_(device=iss_sub("x@y"), user=iss_sub("bob"))
    assert not matches(complex_(device=email("x@y")), device_event, "shop")


def test_every_event_carries_its_application_as_tenant() -> None:
    assert matches(complex_(tenant=opaque("shop")), SESSION_EVENT, "shop")
    assert not matches(complex_(tenant=opaque("blog")), SESSION_EVENT, "shop")
    all_revoked = complex_(tenant=opaque("shop"))
    assert matches(opaque("shop"), all_revoked, "shop")


def test_lists_under_all_and_none() -> None:
    alice = check_subject(iss_sub("alice"))
    assert removed("ALL", [], alice) == [alice]
    assert removed("ALL", [alice], alice) == [alice]  # listed once
    assert added("ALL", [alice], alice) == []
    assert added("NONE", [], alice) == [alice]
    assert removed("NONE", [alice], alice) == []
    alice_event = complex_(session=opaque("s"), user=iss_sub("alice"))
    assert carries("ALL", [], alice_event, "shop")
    assert not carries("ALL", [alice], alice_event, "shop")
    assert not carries("NONE", [], alice_event, "shop")
    assert carries("NONE", [alice], alice_event, "shop")
    full = [check_subject(opaque(str(i))) for i in range(MAX_SUBJECTS)]
    with pytest.raises(InvalidArgument):
        added("NONE", full, alice)


def test_check_subject_keeps_only_the_formats_fields() -> None:
    assert check_subject(email("A@B.example")) == email("a@b.example")
    assert check_subject(complex_(user=iss_sub("u"), session=opaque("s"))) == {
        "format": "complex",
        "user": iss_sub("u"),
        "session": opaque("s"),
    }
    bad_ones: list[Any] = [None, [], {"format": "did", "url": "did:x"}, opaque("x" * 257)]
    for bad in [*bad_ones, email("@x")]:
        with pytest.raises(InvalidArgument):
            check_subject(bad)
