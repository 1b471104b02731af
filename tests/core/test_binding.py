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
from sessionward.errors import ConfigError, DataTooLarge

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
    assert tuple(view) == ("bound", "webcrypto", key.thumbprint, NOW, None)
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
    for name in ("state", "method", "alg", "jkt", "sid", "at", "challenges", "cookies", "proved"):
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
        "_stored_head": states.encode(offered).rsplit("|", 3)[0],
    }
    for bad in (
        "",
        "b2|" + text[3:],
        text + "|x",
        text.replace("|bound|", "|bound|x|"),
        "b1|" * 10,
    ):
        assert states.state_of({states.BINDING_KEY: bad}) is None


def _bound_text(data: dict[str, object], *, last: bool = True) -> tuple[str, str, str]:
    """Session data JSON holding a bound state with one outstanding challenge, as stored
    (``last=False``: the binding is not the last member, so it is not found in place)."""
    key = client_key(Device().jwk, "ES256")
    state, cookie = states.new_cookie(states.bound_state(key, "dbsc", NOW), NOW, POLICY)
    state, challenge = states.add_challenge(state, NOW, POLICY)
    bound = states.with_state(data, state)
    if not last:
        bound = {states.BINDING_KEY: bound.pop(states.BINDING_KEY), **bound}
    text = json.dumps(bound, separators=(",", ":"), ensure_ascii=False)
    return text, challenge, cookie


@pytest.mark.parametrize("last", [True, False])
@pytest.mark.parametrize(
    "data",
    [
        {},
        {"cart": ["tea"], "note": 'a "quoted" \\ text'},
        {"trap": '"sessionward.binding":"b1|bound|dbsc"}'},  # the mark inside a string value
        {"nested": {"sessionward.binding": "b1|x"}, "ünïcode": "✓"},
    ],
)
def test_the_refresh_reads_and_writes_the_stored_text(data: dict[str, object], last: bool) -> None:
    text, challenge, old_cookie = _bound_text(data, last=last)
    stored = states.stored_text(text)
    assert stored is not None
    assert stored.value == json.loads(text)[states.BINDING_KEY]
    assert (stored.span is not None) == (last or not data)  # found in place when last
    parts = states.cookie_bound_parts(stored)
    assert parts is not None
    step = states.refresh_step(parts, challenge, NOW + 10, POLICY)
    assert step.cookie is not None
    written = states.replace_stored(text, stored, step.value, 65536)
    after = json.loads(written)
    assert {k: v for k, v in after.items() if k != states.BINDING_KEY} == data
    state = states.state_of(after)
    assert state is not None
    assert states.cookie_ok(state, step.cookie, NOW + 10)
    assert states.cookie_ok(state, old_cookie, NOW + 10)  # the previous one lives its life out
    assert binding_of(after).proven_at == NOW + 10
    assert states.take_challenge(state, challenge, NOW + 10, POLICY) is None  # spent
    assert states.take_challenge(state, step.challenge, NOW + 10, POLICY) is not None
    with pytest.raises(DataTooLarge):
        states.replace_stored(text, stored, step.value, len(text) // 2)


def test_the_refresh_step_without_a_live_challenge_mints_no_cookie() -> None:
    text, challenge, _ = _bound_text({"cart": []})
    parts = states.cookie_bound_parts(states.stored_text(text))
    assert parts is not None
    for jti, at in ((None, NOW), ("not-ours", NOW), (challenge, NOW + POLICY.challenge_lifetime)):
        step = states.refresh_step(parts, jti, at, POLICY)
        assert step.cookie is None
        assert step.challenge in step.value
        assert step.value.split("|")[10] == parts[10]  # the cookies as they were
    unbound = json.dumps(
        {"cart": [], states.BINDING_KEY: states.encode(states.dpop_state("j", NOW))}
    )
    assert states.cookie_bound_parts(states.stored_text(unbound)) is None
    assert states.stored_text('{"cart":[]}') is None


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


def test_the_stored_key_follows_the_stored_jwk_and_its_cache_is_bounded() -> None:
    device, other = Device(), Device()
    state = states.decode(
        states.encode(states.bound_state(client_key(device.jwk, "ES256"), "dbsc", NOW))
    )
    assert state is not None
    key = states.key_of(state)
    assert key is not None
    assert key.thumbprint == device.thumbprint
    # Another key written in the same session's state: the next read uses it, never the old one.
    rebound = states.bound_state(client_key(other.jwk, "ES256"), "dbsc", NOW, sid=state["sid"])
    parts = states.cookie_bound_parts(
        states.stored_text(json.dumps({states.BINDING_KEY: states.encode(rebound)}))
    )
    assert parts is not None
    fresh = states.stored_key(parts)
    assert fresh is not None
    assert fresh.thumbprint == other.thumbprint
    assert not fresh.verify(b"x", device.signature(b"x"))
    # A damaged stored key is refused, not answered from the cache.
    damaged = [*parts[:8], parts[8].replace(other.jwk["x"], device.jwk["x"]), *parts[9:]]
    assert states.stored_key(damaged) is None
    maxsize = states._stored_key.cache_info().maxsize
    assert maxsize is not None
    assert 0 < maxsize <= 1024
    for _ in range(3):
        states.stored_key(parts)
    assert states._stored_key.cache_info().currsize <= maxsize


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('{"sessionward.binding":"b1|a"}', "b1|a"),
        ('{"sessionward.binding":"b1\\"|a"}', 'b1"|a'),
        ('{"sessionward.binding":"\\u0062\\u0031|a"}', "b1|a"),
        ('{"sessionward.binding":"b1|\\/a"}', "b1|/a"),
        ('{"sessionward.binding":"b1|é"}', "b1|é"),
    ],
)
def test_the_stored_text_is_the_json_value_however_it_is_spelled(text: str, value: str) -> None:
    stored = states.stored_text(text)
    assert stored is not None
    assert stored.value == value == json.loads(text)[states.BINDING_KEY]
    in_place = text[24:-2] == value and value.isascii()  # spelled literally, in ASCII
    assert (stored.span is not None) == in_place


def test_a_damaged_stored_state_is_not_cookie_bound() -> None:
    text, challenge, _ = _bound_text({"cart": []})
    stored = states.stored_text(text)
    assert stored is not None
    assert states.cookie_bound_parts(stored) is not None
    # Characters :func:`encode` never writes, reached through JSON escapes (the parsed path):
    for damaged in (challenge[:-1] + "\\u00e9", challenge + ",\\u0663:1"):
        spelled = text.replace(challenge, damaged)
        assert states.stored_text(spelled) is not None
        assert states.cookie_bound_parts(states.stored_text(spelled)) is None


def _stored_cookie_ok(text: str, presented: str | None, now: float) -> bool | None:
    """The bound-cookie check as the binder runs it on a record's data JSON text."""
    fields = states.bound_fields(text)
    if fields is None or fields[1][2] == "dpop":
        return None
    return states.presented_ok(fields[1], presented, now)


@pytest.mark.parametrize("data", [{}, {"cart": ["tea"], "note": 'a "quoted" \\ text'}])
@pytest.mark.parametrize("last", [True, False])
def test_the_bound_cookie_check_on_the_stored_text_agrees_with_the_state(
    data: dict[str, object], last: bool
) -> None:
    text, challenge, old_cookie = _bound_text(data, last=last)
    stored = states.stored_text(text)
    parts = states.cookie_bound_parts(stored)
    assert stored is not None
    assert parts is not None
    step = states.refresh_step(parts, challenge, NOW + 10, POLICY)
    assert step.cookie is not None
    written = states.replace_stored(text, stored, step.value, 65536)
    state = states.state_of(json.loads(written))
    assert state is not None
    for presented in (step.cookie, old_cookie, "a-cookie-we-never-made", "", None, "é", "x" * 200):
        for at in (NOW + 10, NOW + 299, NOW + 310, NOW + 1000):
            expected = states.cookie_ok(state, presented, at)
            assert _stored_cookie_ok(written, presented, at) is expected


def test_the_bound_cookie_check_on_the_stored_text_knows_what_needs_no_cookie() -> None:
    offered, _, _ = states.offer(NOW)
    for state in (offered, states.dpop_state("jkt", NOW)):
        text = json.dumps({"cart": [], states.BINDING_KEY: states.encode(state)})
        assert _stored_cookie_ok(text, "anything", NOW) is None
    assert _stored_cookie_ok('{"cart":[]}', "anything", NOW) is None
    # A bound state whose cookie list is damaged accepts no cookie (it is not taken as unbound).
    text, _, cookie = _bound_text({})
    value = json.loads(text)[states.BINDING_KEY]
    fields = value.split("|")
    assert _stored_cookie_ok(text, cookie, NOW + 1) is True
    fields[10] = fields[10].replace(":", ":x")
    damaged = json.dumps({states.BINDING_KEY: "|".join(fields)})
    assert _stored_cookie_ok(damaged, cookie, NOW + 1) is False
