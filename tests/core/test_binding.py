"""The binding state kept in session data: challenges spent once and expiring, bound cookies
rotating and dying with their lifetime, the replay record's shape."""

from __future__ import annotations

import json

import pytest
from proofs import Device

from sessionward.core import binding as states
from sessionward.core import token as tokens
from sessionward.core.binding import BindingPolicy, binding_of
from sessionward.core.jwk import client_key
from sessionward.core.record import Session
from sessionward.errors import ConfigError

NOW = 1_800_000_000.0
POLICY = BindingPolicy(cookie_lifetime=300, challenge_lifetime=600)


def test_offer_holds_one_challenge_and_an_authorization() -> None:
    state, challenge, authorization = states.offer(NOW)
    assert binding_of({states.BINDING_KEY: states.encode(state)}).state == "offered"
    assert states.authorization_of(state) == authorization
    assert states.take_challenge(state, challenge, NOW + 1, POLICY) is not None
    assert challenge != authorization


def test_a_challenge_is_spent_once_and_expires() -> None:
    state, challenge, _ = states.offer(NOW)
    spent = states.take_challenge(state, challenge, NOW, POLICY)
    assert spent is not None
    assert states.take_challenge(spent, challenge, NOW, POLICY) is None
    assert states.take_challenge(state, challenge, NOW + 600, POLICY) is None
    assert states.take_challenge(state, "other", NOW, POLICY) is None


def test_challenges_are_bounded_oldest_dropped() -> None:
    state: dict[str, object] = {"state": "bound", "challenges": []}
    issued = []
    for i in range(6):
        state, challenge = states.add_challenge(state, NOW + i, POLICY)
        issued.append(challenge)
    assert states.take_challenge(state, issued[0], NOW + 6, POLICY) is None
    assert states.take_challenge(state, issued[-1], NOW + 6, POLICY) is not None
    assert len(state["challenges"]) == POLICY.max_challenges  # type: ignore[arg-type]


def test_bound_cookies_rotate_and_die_with_their_lifetime() -> None:
    key = client_key(Device().jwk, "ES256")
    state = states.bound_state(key, "dbsc", NOW)
    state, first = states.new_cookie(state, NOW, POLICY)
    assert states.cookie_ok(state, first, NOW + 299)
    assert not states.cookie_ok(state, first, NOW + 300)
    state, second = states.new_cookie(state, NOW + 100, POLICY)
    assert states.cookie_ok(state, first, NOW + 150)  # a request in flight during a refresh
    state, third = states.new_cookie(state, NOW + 200, POLICY)
    assert not states.cookie_ok(state, first, NOW + 250)  # two newer ones: gone
    assert states.cookie_ok(state, second, NOW + 250)
    assert states.cookie_ok(state, third, NOW + 250)
    assert not states.cookie_ok(state, None, NOW)
    assert not states.cookie_ok(state, "x" * 200, NOW)
    assert first not in json.dumps(state)  # only verifiers are stored


def test_binding_view_and_what_needs_a_cookie() -> None:
    key = client_key(Device().jwk, "ES256")
    bound = states.bound_state(key, "webcrypto", NOW)
    view = binding_of({states.BINDING_KEY: states.encode(bound)})
    assert tuple(view) == ("bound", "webcrypto", key.thumbprint, NOW)
    assert view.bound
    assert states.cookie_bound(bound)
    dpop = states.dpop_state("jkt", NOW)
    assert not states.cookie_bound(dpop)
    assert binding_of({states.BINDING_KEY: states.encode(dpop)}).method == "dpop"
    assert binding_of({}) == states.UNBOUND
    assert binding_of({states.BINDING_KEY: {"state": "weird"}}) == states.UNBOUND
    assert states.key_of(dpop) is None
    assert states.key_of(bound) is key
    assert states.with_state({"a": 1, states.BINDING_KEY: bound}, None) == {"a": 1}
    with pytest.raises(ConfigError):
        states.bound_state(key, "magic", NOW)  # type: ignore[arg-type]


def test_the_stored_form_round_trips_and_refuses_garbage() -> None:
    key = client_key(Device("RS256").jwk, "RS256")
    state = states.bound_state(key, "dbsc", NOW + 0.7)
    state, _ = states.add_challenge(state, NOW, POLICY)
    state, _ = states.new_cookie(state, NOW + 0.2, POLICY)
    text = states.encode(state)
    decoded = states.decode(text)
    assert decoded is not None
    assert states.encode(decoded) == text
    for name in ("state", "method", "alg", "jkt", "sid", "at", "challenges", "cookies"):
        assert decoded[name] == state[name], name
    assert states.jwk_of(decoded) == key.jwk
    assert states.key_of(decoded) is key
    assert state["cookies"][0][1] == NOW + 1 + POLICY.cookie_lifetime  # rounded up
    # a decoded state changed by the functions above is written back with its new parts
    later, cookie = states.new_cookie(decoded, NOW + 10, POLICY)
    assert states.cookie_ok(states.decode(states.encode(later)) or {}, cookie, NOW + 11)
    offered, _, _ = states.offer(NOW)
    assert states.decode(states.encode(offered)) == {
        **offered,
        "cookies": [],
        "_stored_head": states.encode(offered).rsplit("|", 2)[0],
    }
    for bad in (
        "",
        "b2|" + text[3:],
        text + "|x",
        text.replace("|bound|", "|bound|x|"),
        "b1|" * 10,
    ):
        assert states.state_of({states.BINDING_KEY: bad}) is None


def test_replay_record_looks_like_an_expiring_anonymous_record() -> None:
    record = states.replay_record("dpop", "jti-1", NOW + 65, NOW)
    assert tokens.is_session_id(record.id)
    assert record.id == states.replay_record("dpop", "jti-1", NOW + 99, NOW).id
    assert record.id != states.replay_record("dpop", "jti-2", NOW + 65, NOW).id
    assert record.secret_hash == b""
    assert record.expires_at == NOW + 65
    assert Session(record).data == {states.REPLAY_KEY: "dpop"}


@pytest.mark.parametrize(
    "options",
    [
        {"cookie_lifetime": 0},
        {"cookie_lifetime": True},
        {"challenge_lifetime": 0},
        {"algorithms": ("HS256",)},
        {"algorithms": ()},
        {"max_challenges": 0},
    ],
)
def test_policy_refuses_unsafe_values(options: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        BindingPolicy(**options)  # type: ignore[arg-type]
