"""A session's binding to a key its client keeps, stored inside the session record.

The binding lives in the record's data under :data:`BINDING_KEY` (a ``sessionward.`` key, so
``request.session`` and ``flask.session`` never show it and refuse to write it). Every store
keeps it as it keeps the rest of the data, and each change is one conditional ``replace``,
so a challenge is consumed exactly once even when two nodes race. States:

``offered``
    the login response asked the browser to register a key; holds the outstanding
    registration challenges and the ``authorization`` value sent with them. A client that
    never registers keeps an ordinary session, reported as unbound.
``bound``
    ``method`` (``dbsc``: the browser's own DBSC; ``webcrypto``: the page-script fallback;
    ``dpop``: an API client signing every request), the public ``jwk`` and its thumbprint
    ``jkt``, the DBSC session identifier ``sid``, the outstanding refresh challenges and the
    verifiers of the short-lived bound cookies still alive (the newest and the one before, so
    requests in flight during a refresh keep working until their cookie's own end).

The state is stored as one compact string (``b1|state|method|...``, every field base64url or
a number): a refresh rewrites it, and encoding one string is several times cheaper than a
nested JSON structure. Times in it are whole seconds (a cookie's end rounded up, so the server
never refuses a cookie the browser still holds). Nothing here does I/O or reads a clock;
``now`` is always passed in.
"""

from __future__ import annotations

import binascii
import functools
import hmac
import json
import math
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from hashlib import sha256 as _sha256
from typing import Any, Final, Literal, NamedTuple

from sessionward.core import token as tokens
from sessionward.core.jose import b64encode
from sessionward.core.jwk import CLIENT_ALGORITHMS, ClientKey, client_key
from sessionward.core.record import SessionRecord, encode_data, internal_id, internal_record
from sessionward.errors import ConfigError, DataTooLarge, InvalidProof

__all__ = [
    "BINDING_KEY",
    "Binding",
    "BindingPolicy",
    "Method",
    "binding_of",
    "last_proof",
]

BINDING_KEY: Final = "sessionward.binding"
#: How the key appears in stored data: a cheap test before parsing it.
MARK: Final = f'"{BINDING_KEY}":'
REPLAY_KEY: Final = "sessionward.replay"
Method = Literal["dbsc", "webcrypto", "dpop"]
METHODS: Final = ("dbsc", "webcrypto", "dpop")
_COOKIES_KEPT: Final = 2
_VERIFIER_BYTES: Final = tokens.VERIFIER_BYTES
_b2a: Final = binascii.b2a_base64
_URLSAFE: Final = bytes.maketrans(b"+/", b"-_")


@dataclass(frozen=True, slots=True)
class BindingPolicy:
    """How bound sessions behave.

    * ``cookie_lifetime``: seconds a bound cookie is accepted (its ``Max-Age``); a copied
      cookie is worth this long at most. Minutes, not seconds: Chromium limits how often a
      site may ask it to sign.
    * ``challenge_lifetime``: seconds a challenge may be answered (a browser caches the one
      sent with a refresh until the next refresh, about ``cookie_lifetime`` later).
    * ``algorithms``: what a registration may use (``ES256``, ``RS256``).
    * ``allow_fallback``: whether a bound session whose browser reports it skipped the
      refresh (``Secure-Session-Skipped``) is served without a bound cookie, flagged as not
      proven. Off by default: whoever copied the long-lived cookie can send that header too.
    * ``max_challenges``: outstanding challenges kept per session (oldest dropped first).
    """

    cookie_lifetime: int = 300
    challenge_lifetime: float = 600.0
    algorithms: tuple[str, ...] = CLIENT_ALGORITHMS
    allow_fallback: bool = False
    max_challenges: int = 4

    def __post_init__(self) -> None:
        if isinstance(self.cookie_lifetime, bool) or not 1 <= self.cookie_lifetime <= 86400:
            raise ConfigError("cookie_lifetime must be between 1 s and one day")
        if not 1 <= self.challenge_lifetime <= 86400:
            raise ConfigError("challenge_lifetime must be between 1 s and one day")
        if not self.algorithms or any(a not in CLIENT_ALGORITHMS for a in self.algorithms):
            raise ConfigError(f"algorithms must be among {CLIENT_ALGORITHMS}")
        if not 1 <= self.max_challenges <= 16:
            raise ConfigError("max_challenges must be between 1 and 16")


class Binding(NamedTuple):
    """What an application, an admin page or a device list may show about a binding.

    ``proven_at`` is when the client last proved the key with a signature the session record
    keeps track of (the registration or the latest bound-cookie refresh). A DPoP client proves
    it on every request without a write to the session, so its ``proven_at`` stays ``None``:
    its session's ``last_seen`` tells when it was last used, and every use carried a proof."""

    state: Literal["unbound", "offered", "bound"]
    method: str | None = None
    jkt: str | None = None
    bound_at: float | None = None
    proven_at: float | None = None

    @property
    def bound(self) -> bool:
        return self.state == "bound"


UNBOUND: Final = Binding("unbound")


_FIELDS: Final = ("state", "method", "alg", "jkt", "sid", "at", "auth")
# ``decode`` keeps the stored head (every field but the challenges and cookies) under this
# key, and ``encode`` writes it back as it was: the functions below change only challenges
# and cookies of a decoded state, and build fresh states (without it) for anything else.
_HEAD: Final = "_stored_head"


def _pairs(items: Any) -> str:
    return ",".join([f"{a}:{b}" for a, b in items])


def encode(state: Mapping[str, Any]) -> str:
    """The stored form of a state (see the module docstring)."""
    head = state.get(_HEAD)
    if head is None:
        fields = "|".join(["" if state.get(n) is None else str(state[n]) for n in _FIELDS])
        head = f"b1|{fields}|{_pairs(sorted(state.get('jwk', {}).items()))}"
    challenges, cookies = _pairs(state.get("challenges", ())), _pairs(state.get("cookies", ()))
    proved = state.get("proved")
    return f"{head}|{challenges}|{cookies}|{'' if proved is None else int(proved)}"


def _numbered(text: str) -> list[list[Any]]:
    out: list[list[Any]] = []
    for item in text.split(",") if text else ():
        key, _, value = item.partition(":")
        out.append([key, int(value)])
    return out


def decode(text: str) -> dict[str, Any] | None:
    """The state in its stored form, or ``None`` for anything else."""
    parts = text.split("|")
    if len(parts) not in (11, 12) or parts[0] != "b1":
        return None
    try:
        state: dict[str, Any] = {n: v for n, v in zip(_FIELDS, parts[1:8], strict=True) if v}
        if "at" in state:
            state["at"] = int(state["at"])
        state["challenges"] = _numbered(parts[9])
        state["cookies"] = _numbered(parts[10])
        if len(parts) == 12 and parts[11]:
            state["proved"] = int(parts[11])
    except ValueError:
        return None
    if parts[8]:
        state["jwk"] = parts[8]  # parsed only when the key is needed (``key_of``)
    state[_HEAD] = "|".join(parts[:9])
    return state


def state_of(data: Mapping[str, Any]) -> dict[str, Any] | None:
    """The binding state in a session's data, or ``None``."""
    stored = data.get(BINDING_KEY)
    state = decode(stored) if isinstance(stored, str) else None
    return state if state is not None and state.get("state") in ("offered", "bound") else None


def binding_of(data: Mapping[str, Any]) -> Binding:
    """The binding of a session, from its data (``session.data``)."""
    state = state_of(data)
    if state is None:
        return UNBOUND
    if state["state"] == "offered":
        return Binding("offered")
    at, proved = state.get("at"), state.get("proved")
    return Binding(
        "bound",
        state.get("method") if state.get("method") in METHODS else None,
        state.get("jkt") if isinstance(state.get("jkt"), str) else None,
        at if isinstance(at, int | float) else None,
        proved if isinstance(proved, int | float) else None,
    )


def last_proof(binding: Binding, last_seen: float) -> float | None:
    """When the client last proved its key, as far as the session record tells: the
    registration or latest bound-cookie refresh; for DPoP, the session's last activity (every
    request it accepts carries a proof, and activity is written with the usual throttle)."""
    if binding.method == "dpop":
        return last_seen
    return binding.proven_at if binding.proven_at is not None else binding.bound_at


def _challenge() -> str:
    return secrets.token_urlsafe(24)


def offer(now: float) -> tuple[dict[str, Any], str, str]:
    """A fresh ``offered`` state with one registration challenge; returns ``(state,
    challenge, authorization)``."""
    challenge, authorization = _challenge(), secrets.token_urlsafe(16)
    state = {"state": "offered", "challenges": [[challenge, int(now)]], "auth": authorization}
    return state, challenge, authorization


def authorization_of(state: Mapping[str, Any]) -> str | None:
    value = state.get("auth")
    return value if isinstance(value, str) else None


def _live(state: Mapping[str, Any], now: float, policy: BindingPolicy) -> list[list[Any]]:
    out = []
    for entry in state.get("challenges", ()):
        if (
            isinstance(entry, list)
            and len(entry) == 2
            and isinstance(entry[0], str)
            and isinstance(entry[1], int)
            and now - policy.challenge_lifetime < entry[1] <= now + 60
        ):
            out.append(entry)
    return out


def add_challenge(
    state: Mapping[str, Any], now: float, policy: BindingPolicy
) -> tuple[dict[str, Any], str]:
    """``state`` with one more outstanding challenge (the oldest dropped past the limit)."""
    challenge = _challenge()
    live = [*_live(state, now, policy), [challenge, int(now)]][-policy.max_challenges :]
    return {**state, "challenges": live}, challenge


def take_challenge(
    state: Mapping[str, Any], jti: str, now: float, policy: BindingPolicy
) -> dict[str, Any] | None:
    """``state`` without the challenge ``jti``, or ``None`` when ``jti`` is not an outstanding,
    unexpired challenge of this session. Compared in constant time."""
    live = _live(state, now, policy)
    found = None
    for entry in live:
        if hmac.compare_digest(entry[0].encode(), jti.encode()):
            found = entry
    if found is None:
        return None
    return {**state, "challenges": [e for e in live if e is not found]}


def bound_state(
    key: ClientKey, method: Method, now: float, *, sid: str | None = None
) -> dict[str, Any]:
    """A ``bound`` state for ``key`` (no challenge outstanding, no cookie yet)."""
    if method not in METHODS:
        raise ConfigError(f"method must be one of {METHODS}")
    return {
        "state": "bound",
        "method": method,
        "alg": key.alg,
        "jwk": key.jwk,
        "jkt": key.thumbprint,
        "sid": sid or secrets.token_urlsafe(12),
        "at": int(now),
        "challenges": [],
        "cookies": [],
    }


def dpop_state(jkt: str, now: float) -> dict[str, Any]:
    """A ``bound`` state for a DPoP client: only the key's thumbprint is kept, because every
    request carries the key itself in its proof."""
    return {"state": "bound", "method": "dpop", "jkt": jkt, "at": int(now)}


def key_of(state: Mapping[str, Any]) -> ClientKey | None:
    """The stored key of a bound state (``None`` for a DPoP binding, which stores only the
    thumbprint, or a damaged state)."""
    jwk, alg = state.get("jwk"), state.get("alg")
    if isinstance(jwk, dict) and isinstance(alg, str):
        return client_key(jwk, alg)
    if not isinstance(jwk, str) or not isinstance(alg, str):
        return None
    try:
        return _stored_key(jwk, alg)
    except InvalidProof:
        return None


@functools.lru_cache(maxsize=1024)
def _stored_key(members: str, alg: str) -> ClientKey:
    return client_key(dict(m.partition(":")[::2] for m in members.split(",")), alg)


def jwk_of(state: Mapping[str, Any]) -> dict[str, str] | None:
    """The stored public JWK of a bound state."""
    key = key_of(state)
    return None if key is None else key.jwk


def cookie_bound(state: Mapping[str, Any] | None) -> bool:
    """Whether requests of this session need a bound cookie (a DBSC or fallback binding)."""
    return state is not None and state["state"] == "bound" and state.get("method") != "dpop"


def _verifier(value: str) -> str:
    return b64encode(_sha256(value.encode("ascii")).digest()[:_VERIFIER_BYTES])


def new_cookie(
    state: Mapping[str, Any], now: float, policy: BindingPolicy
) -> tuple[dict[str, Any], str]:
    """``state`` with a new bound cookie (the previous one kept until its own end); returns
    ``(state, cookie value)``. Only a verifier of the value is stored."""
    value = secrets.token_urlsafe(32)
    kept = [c for c in _cookies(state) if c[1] > now][-(_COOKIES_KEPT - 1) :]
    until = math.ceil(now) + policy.cookie_lifetime
    return {**state, "cookies": [*kept, [_verifier(value), until]], "proved": int(now)}, value


def _cookies(state: Mapping[str, Any]) -> list[list[Any]]:
    return [
        c
        for c in state.get("cookies", ())
        if isinstance(c, list) and len(c) == 2 and isinstance(c[0], str)
        if isinstance(c[1], int)
    ]


def cookie_ok(state: Mapping[str, Any], presented: str | None, now: float) -> bool:
    """Whether ``presented`` is a bound cookie of this session still inside its lifetime."""
    if not presented or not presented.isascii() or len(presented) > 128:
        return False
    verifier = _verifier(presented)
    ok = False
    for stored, until in _cookies(state):
        if hmac.compare_digest(stored, verifier) and now < until:
            ok = True
    return ok


def with_state(data: Mapping[str, Any], state: Mapping[str, Any] | None) -> dict[str, Any]:
    """A copy of session data carrying ``state`` (or no binding at all for ``None``)."""
    out = {k: v for k, v in data.items() if k != BINDING_KEY}
    if state is not None:
        out[BINDING_KEY] = encode(state)
    return out


# -- the refresh, on the stored form ---------------------------------------------------------
# A refresh is a bound session's hot path: it reads the stored string straight out of the
# record's JSON text and writes the new one back in place, so the session's data is neither
# parsed nor serialised again.

_COOKIE_BOUND: Final = ("dbsc", "webcrypto")


def _span(text: str) -> tuple[int, int] | None:
    """Where the stored binding sits in a record's data JSON text when it is the top-level
    object's last member (as :func:`with_state` and :func:`replace_stored` leave it).

    Sound for any JSON text: a raw ``"`` always delimits a string, so ``"sessionward.binding":``
    is a member name; a value without ``"`` or ``\\`` ends at the next quote; and a ``}`` that
    is the text's last character closes the top-level object."""
    if not text.endswith('"}'):
        return None
    at = text.rfind(MARK)
    start, end = at + len(MARK) + 1, len(text) - 2
    if at < 0 or start > end or text[start - 1] != '"':
        return None
    return start, end


class Stored(NamedTuple):
    """The stored binding of a record's data JSON text and where it sits in it (``span``,
    ``None`` when the text must be parsed to replace it)."""

    value: str
    span: tuple[int, int] | None


def stored_text(data: str) -> Stored | None:
    """The stored binding in a record's data JSON text, or ``None``."""
    span = _span(data)
    if span is not None:
        literal = data[span[0] : span[1]]
        # ASCII without a quote or a backslash (``isascii`` reads a flag): JSON text spells
        # such a string as it is, so the span holds the value itself. What :func:`encode`
        # writes always qualifies; the fields are checked one by one where they are read.
        if literal.isascii() and '"' not in literal and "\\" not in literal:
            return Stored(literal, span)
    loaded = json.loads(data) if MARK in data else None
    value = loaded.get(BINDING_KEY) if isinstance(loaded, dict) else None
    return Stored(value, None) if isinstance(value, str) else None


def replace_stored(data: str, stored: Stored, value: str, limit: int) -> str:
    """A record's data JSON text with ``value`` in place of ``stored`` (found in ``data`` by
    :func:`stored_text`); ``DataTooLarge`` past ``limit`` bytes."""
    span = stored.span
    if span is None:
        kept = {k: v for k, v in json.loads(data).items() if k != BINDING_KEY}
        return encode_data({**kept, BINDING_KEY: value}, limit)
    text = f"{data[: span[0]]}{value}{data[span[1] :]}"
    if len(text) > limit and len(text.encode("utf-8")) > limit:
        raise DataTooLarge(f"session data exceeds {limit} bytes")
    return text


def cookie_bound_parts(stored: Stored | None) -> list[str] | None:
    """The fields of a stored state bound through a cookie (DBSC or the fallback), else
    ``None``. :func:`encode` writes ASCII only: anything else is a damaged state."""
    parts = None if stored is None or not stored.value.isascii() else stored.value.split("|")
    if parts is None or len(parts) not in (11, 12) or parts[0] != "b1":
        return None
    return parts if parts[1] == "bound" and parts[2] in _COOKIE_BOUND else None


def bound_fields(data: str) -> tuple[Stored, list[str]] | None:
    """The stored binding of a record's data JSON text and its fields, when it is a ``bound``
    state (any method; :func:`encode` writes ASCII only, anything else is a damaged state)."""
    if MARK not in data:  # the common case: not bound, nothing parsed
        return None
    stored = stored_text(data)
    if stored is None or not stored.value.isascii():
        return None
    parts = stored.value.split("|")
    if len(parts) not in (11, 12) or parts[0] != "b1" or parts[1] != "bound":
        return None
    return stored, parts


def presented_ok(parts: list[str], presented: str | None, now: float) -> bool:
    """:func:`cookie_ok` on the fields of a stored state (see :func:`bound_fields`): whether
    ``presented`` is one of its bound cookies still inside its lifetime. A damaged cookie list
    accepts no cookie."""
    if not presented or not presented.isascii() or len(presented) > 128:
        return False
    verifier = _verifier(presented)
    ok = False
    for item in parts[10].split(",") if parts[10] else ():
        kept, _, until = item.partition(":")
        if hmac.compare_digest(kept, verifier) and until.isdecimal() and now < int(until):
            ok = True
    return ok


def stored_key(parts: list[str]) -> ClientKey | None:
    """The registered key of a state's fields (cached), or ``None`` when damaged."""
    try:
        return _stored_key(parts[8], parts[3]) if parts[8] and parts[3] else None
    except InvalidProof:
        return None


class Step(NamedTuple):
    """A refresh's outcome: the new stored ``value``, the next ``challenge``, and the new
    bound ``cookie`` when the refresh answered an outstanding challenge (``None`` otherwise)."""

    value: str
    challenge: str
    cookie: str | None


def refresh_step(parts: list[str], jti: str | None, now: float, policy: BindingPolicy) -> Step:
    """Spend the challenge ``jti`` (from a proof whose signature checked) and issue the next
    challenge, plus a new bound cookie when ``jti`` was outstanding and unexpired. Compared in
    constant time; expired challenges and cookies are dropped on the way."""
    low, high = now - policy.challenge_lifetime, now + 60
    # Stored challenges are ASCII, so a non-ASCII ``jti`` matches none (and ``compare_digest``
    # takes ASCII text as it is).
    wanted = jti if jti is not None and jti.isascii() else None
    live, found = [], False
    for item in parts[9].split(",") if parts[9] else ():
        name, _, issued = item.partition(":")
        if issued.isdecimal() and low < int(issued) <= high:
            if wanted is not None and not found and hmac.compare_digest(name, wanted):
                found = True
            else:
                live.append(item)
    # One CSPRNG call and one encoding: 24 bytes of challenge (32 characters), then 32 of
    # cookie (43 characters, the padding ``=`` left out).
    fresh = _b2a(secrets.token_bytes(56), newline=False).translate(_URLSAFE).decode()
    challenge, second = fresh[:32], int(now)
    live.append(f"{challenge}:{second}")
    if len(live) > policy.max_challenges:
        live = live[-policy.max_challenges :]
    head = "|".join(parts[:9])
    if not found:
        proved = parts[11] if len(parts) == 12 else ""
        return Step(f"{head}|{','.join(live)}|{parts[10]}|{proved}", challenge, None)
    cookie = fresh[32:75]
    cookies = f"{_verifier(cookie)}:{math.ceil(now) + policy.cookie_lifetime}"
    for item in reversed(parts[10].split(",")) if parts[10] else ():
        until = item.partition(":")[2]
        if until.isdecimal() and int(until) > now:  # the newest one still alive is kept
            cookies = f"{item},{cookies}"  # _COOKIES_KEPT: the previous and the new
            break
    return Step(f"{head}|{','.join(live)}|{cookies}|{second}", challenge, cookie)


def replay_record(kind: str, jti: str, until: float, now: float) -> SessionRecord:
    """The record that remembers a used ``jti`` until ``until``: created with the store's
    create-only ``add``, so a second use of the same ``jti`` on any node finds it taken.

    Its id is derived from the ``jti`` (in the session id alphabet and length); it is an
    internal record (:func:`~sessionward.core.record.internal_record`): never a session,
    expiring at ``until``."""
    data = f'{{"{REPLAY_KEY}":"{kind}"}}'
    return internal_record(internal_id("replay", kind, jti), data, until, now)
