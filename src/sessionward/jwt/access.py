"""Access tokens: short-lived JWTs we issue, and the strict verifier for them.

Issued tokens look like this (header members sorted, compact JSON)::

    {"alg":"ES256","kid":"<kid>","typ":"at+jwt"}
    {"iss":..,"aud":..,"sub":..,"sid":..,"iat":..,"nbf":..,"exp":..,"jti":..,"scope":..,"lvl":..}

The verifier accepts only that shape, in this order of checks (RFC 8725):

1. a ``str`` of at most ``max_size`` characters in compact form — ASCII, three base64url
   segments of possible lengths, checked by decoding the signature and payload strictly (any
   character outside the alphabet, ``=`` included, fails) before anything is parsed (so the JSON
   serialization, JWE's five segments and stray characters never reach a parser);
2. the header: the exact segment we issue for a key of the set (one dictionary lookup), or,
   for other encoders' spellings, a strict parse whose members must be exactly ``alg``, ``kid``
   and ``typ`` (so ``jku``, ``x5u``, ``jwk``, ``x5c``, ``crit`` … are rejected, never fetched or
   trusted); ``kid`` only indexes the in-memory key set; ``alg`` must equal the algorithm the key
   was built for — ``none`` in any spelling, or ``HS256`` on an EC key, never is;
3. the signature, with the key's own algorithm, canonical base64url of the exact size (ECDSA as
   raw ``r || s`` with ``0 < r, s < n``);
4. only then the payload: UTF-8 JSON object (the exact spelling our issuer writes is read by
   one regular expression, every other spelling by the JSON parser, with the same checks);
   ``iss``, ``aud`` (one string) and ``typ`` exact; ``exp``, ``iat`` integers, ``nbf`` honoured,
   skew at most 60 s, lifetime at most ``max_lifetime``; ``sub``, ``sid``, ``jti`` present;
5. revocations (jti denylist, revoked sessions, per-user cut-off).

Every failure raises :class:`~sessionward.errors.InvalidToken` with a ``reason`` code; the
message is the same opaque text for all of them.

A bounded LRU cache keyed by the token string returns the claims of a token verified before,
after re-checking ``exp``, the revocations and the key set's ``epoch`` (a revoked or pruned key
empties it). The module does no I/O and reads time only from the injected clock.
"""

from __future__ import annotations

import math
import operator
import re
import secrets
from binascii import Error as Base64Error
from binascii import a2b_base64
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from time import time
from types import MappingProxyType
from typing import Any, Final, NamedTuple

from sessionward.clock import Clock, SystemClock
from sessionward.core.jose import (
    _SCAN,
    _TAIL_2,
    _TAIL_3,
    b64decode,
    b64encode,
    dumps,
    loads_object,
)
from sessionward.core.token import is_session_id
from sessionward.errors import ConfigError, InvalidArgument, InvalidToken
from sessionward.jwt.claims import AccessClaims
from sessionward.jwt.keys import Key
from sessionward.jwt.keyset import MAX_SKEW, MAX_TOKEN_LIFETIME, KeySet
from sessionward.jwt.revocation import Revocations

__all__ = [
    "DEFAULT_LIFETIME",
    "AccessClaims",
    "AccessTokenIssuer",
    "AccessTokenVerifier",
    "IssuedToken",
]

DEFAULT_LIFETIME: Final = 5 * 60
DEFAULT_TYP: Final = "at+jwt"
MAX_SIZE: Final = 8 * 1024
_MAX_HEADER: Final = 1024
REGISTERED: Final = frozenset(
    ("iss", "aud", "sub", "sid", "iat", "nbf", "exp", "jti", "scope", "lvl", "auth_time")
)
_HEADER_MEMBERS: Final = frozenset(("alg", "kid", "typ"))
_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")
# base64url -> base64 for binascii's strict decoder, and every character outside the base64url
# alphabet ("+", "/", "=" included) to "!", which that decoder rejects: one C pass checks the
# alphabet and decodes (the compact-form check of the module docstring).
_TO_BASE64: Final = bytes.maketrans(
    bytes(range(256)),
    bytes(
        (ord("+") if c == 45 else ord("/") if c == 95 else c if chr(c) in _ALPHABET else 33)
        for c in range(256)
    ),
)
_PADDING: Final = (b"", b"", b"==", b"=")
# Canonical last characters of a segment of length 4k+2 / 4k+3 (unused bits zero), as bytes.
_TAILS: Final = (
    frozenset[int](),
    frozenset[int](),
    frozenset(ord(c) for c in _TAIL_2),
    frozenset(ord(c) for c in _TAIL_3),
)


_new_claims = tuple.__new__
_scan_payload = _SCAN[False]
_REQUIRED = operator.itemgetter("iss", "aud", "sub", "sid", "iat", "exp", "jti")
_SESSION_ID_CHARS: Final = frozenset(_ALPHABET)


class IssuedToken(NamedTuple):
    """A freshly issued access token and its claims. ``repr`` hides the token."""

    token: str
    claims: AccessClaims

    def __repr__(self) -> str:
        return f"IssuedToken(<token>, {self.claims!r})"


def header_segment(key: Key, typ: str) -> str:
    """The exact protected-header segment we issue for ``key`` (members sorted, compact)."""
    return b64encode(dumps({"alg": key.alg, "kid": key.kid, "typ": typ}))


_JSON_STRING: Final = r'"([^"\\\x00-\x1f]'  # a JSON string without escapes (opened)
_JSON_INT: Final = "(0|[1-9][0-9]{0,15})"  # a non-negative integer in plain decimal


def _payload_shape(issuer: str, audience: str) -> re.Pattern[str]:
    """The payload our issuer writes (no ``auth_time``, no extra claims), for the fast path.

    Every string it admits decodes to the characters it spans (no backslash, no control
    character); every integer is ASCII digits without a leading zero, so ``int()`` of the group
    is the JSON value. ``sid`` has the session-id shape, ``sub`` is non-empty, ``jti`` 1-128
    characters, ``lvl`` non-negative: the checks the full path makes on those claims.
    """
    text, integer = _JSON_STRING, _JSON_INT
    return re.compile(
        f'{{"iss":{re.escape(dumps(issuer).decode())},"aud":{re.escape(dumps(audience).decode())}'
        f',"sub":{text}+)","sid":"([A-Za-z0-9_-]{{16}})","iat":{integer},"nbf":{integer}'
        f',"exp":{integer},"jti":{text}{{1,128}})","scope":{text}*)","lvl":{integer}}}'
    )


def _check_common(issuer: str, audience: str, typ: str) -> None:
    for name, value in (("issuer", issuer), ("audience", audience), ("typ", typ)):
        if not isinstance(value, str) or not value or len(value) > 256:
            raise ConfigError(f"{name} must be a non-empty string of at most 256 characters")


class AccessTokenIssuer:
    """Signs access tokens with the key set's active key.

    ``lifetime`` defaults to 5 minutes; no token lives longer than ``max_lifetime`` (at most
    15 minutes, and never more than the key set's ``max_token_lifetime``, which decides how long
    retired keys keep verifying).
    """

    def __init__(
        self,
        keyset: KeySet,
        *,
        issuer: str,
        audience: str,
        typ: str = DEFAULT_TYP,
        lifetime: float = DEFAULT_LIFETIME,
        max_lifetime: float | None = None,
        clock: Clock | None = None,
    ) -> None:
        _check_common(issuer, audience, typ)
        cap = keyset.max_token_lifetime if max_lifetime is None else max_lifetime
        if not 0 < cap <= min(MAX_TOKEN_LIFETIME, keyset.max_token_lifetime):
            raise ConfigError("max_lifetime must be positive and within the key set's limit")
        if not 0 < lifetime <= cap:
            raise ConfigError("lifetime must be positive and at most max_lifetime")
        self.keyset = keyset
        self.issuer = issuer
        self.audience = audience
        self.typ = typ
        self.lifetime = int(lifetime)
        self.max_lifetime = int(cap)
        self.clock: Clock = clock or SystemClock()
        self._headers: dict[str, str] = {}

    def issue(
        self,
        *,
        subject: str,
        session_id: str,
        scopes: Iterable[str] = (),
        auth_level: int = 1,
        auth_time: float | None = None,
        lifetime: float | None = None,
        not_after: float | None = None,
        not_before: float | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> IssuedToken:
        """Sign a token for ``subject`` backed by the session ``session_id``.

        ``not_after`` caps ``exp`` (the backing session's absolute expiry); ``not_before``
        raises ``iat`` to a user's revocation cut-off so a token issued in the same second as
        a logout-everywhere is not born revoked. ``extra`` adds private claims; registered
        names cannot be overridden.
        """
        now = self.clock.now()
        if not isinstance(subject, str) or not subject or len(subject) > 256:
            raise InvalidArgument("subject must be a non-empty string of at most 256 characters")
        if not is_session_id(session_id):
            raise InvalidArgument("session_id must be a sessionward session id")
        if isinstance(auth_level, bool) or not isinstance(auth_level, int) or auth_level < 0:
            raise InvalidArgument("auth_level must be a non-negative integer")
        span = self.lifetime if lifetime is None else lifetime
        if not 0 < span <= self.max_lifetime:
            raise InvalidArgument(f"lifetime must be in (0, {self.max_lifetime}] seconds")
        iat = math.floor(now)
        if not_before is not None and iat < not_before:
            iat = math.ceil(not_before)
        exp = iat + int(span)
        if not_after is not None:
            exp = min(exp, math.floor(not_after))
        if exp <= iat:
            raise InvalidArgument("the token would expire before it is valid (session ending)")
        scope = " ".join(sorted(set(scopes)))
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "sid": session_id,
            "iat": iat,
            "nbf": iat,
            "exp": exp,
            "jti": secrets.token_urlsafe(16),
            "scope": scope,
            "lvl": auth_level,
        }
        if auth_time is not None:
            claims["auth_time"] = math.floor(auth_time)
        if extra:
            clash = REGISTERED.intersection(extra)
            if clash:
                raise InvalidArgument(f"extra claims may not set {sorted(clash)}")
            claims.update(extra)
        key = self.keyset.signing_key
        header = self._headers.get(key.kid)
        if header is None:
            header = self._headers[key.kid] = header_segment(key, self.typ)
        signing_input = f"{header}.{b64encode(dumps(claims))}"
        token = f"{signing_input}.{b64encode(key.sign(signing_input.encode('ascii')))}"
        if len(token) > MAX_SIZE:
            raise InvalidArgument("the token would exceed the size limit; send fewer claims")
        result = AccessClaims(
            self.issuer,
            self.audience,
            subject,
            session_id,
            iat,
            iat,
            exp,
            claims["jti"],
            scope,
            auth_level,
            claims.get("auth_time"),
            self.typ,
            key.kid,
            MappingProxyType(claims),
        )
        return IssuedToken(token, result)


def _reject(reason: str) -> InvalidToken:
    return InvalidToken(reason)


class AccessTokenVerifier:
    """Verifies access tokens issued for ``audience`` by ``issuer`` with keys of ``keyset``.

    ``skew`` (at most 60 s) is the tolerance for ``exp``, ``nbf`` and ``iat``.
    ``revocations`` is consulted on every call, cached or not. ``cache_size`` bounds the
    verified-token cache (0 disables it).
    """

    def __init__(
        self,
        keyset: KeySet,
        *,
        issuer: str,
        audience: str,
        typ: str = DEFAULT_TYP,
        skew: float = MAX_SKEW,
        max_lifetime: float | None = None,
        max_size: int = MAX_SIZE,
        revocations: Revocations | None = None,
        cache_size: int = 4096,
        clock: Clock | None = None,
    ) -> None:
        _check_common(issuer, audience, typ)
        if not 0 <= skew <= MAX_SKEW:
            raise ConfigError("skew must be in [0, 60] seconds")
        cap = keyset.max_token_lifetime if max_lifetime is None else max_lifetime
        if not 0 < cap <= MAX_TOKEN_LIFETIME:
            raise ConfigError("max_lifetime must be in (0, 900] seconds")
        if not 0 < max_size <= 256 * 1024:
            raise ConfigError("max_size must be in (0, 262144] characters")
        if cache_size < 0:
            raise ConfigError("cache_size must not be negative")
        self.keyset = keyset
        self.issuer = issuer
        self.audience = audience
        self.typ = typ
        self.skew = float(skew)
        self.max_lifetime = cap
        self.max_size = max_size
        self.revocations = revocations
        self.clock = clock or SystemClock()
        self.cache_size = cache_size
        # token -> (claims, key-set epoch it was verified under); a stale epoch is a miss.
        self._cache: OrderedDict[str, tuple[AccessClaims, int]] = OrderedDict()
        self._headers: dict[bytes, Key] = {}
        self._epoch = -1
        self._our_shape = _payload_shape(issuer, audience).fullmatch

    @property
    def clock(self) -> Clock:
        return self._clock

    @clock.setter
    def clock(self, clock: Clock) -> None:
        self._clock = clock
        # SystemClock.now() is time.time(): call that directly, one Python frame less a token.
        self._now: Callable[[], float] = time if type(clock) is SystemClock else clock.now

    # -- the hot path -----------------------------------------------------------------------

    def verify(self, token: object) -> AccessClaims:
        """The claims of ``token``, or ``InvalidToken`` with the reason."""
        if type(token) is not str:
            raise _reject("malformed")
        if len(token) > self.max_size:  # before hashing it for the cache
            raise _reject("too-large")
        now = self._now()
        keyset = self.keyset
        if self._epoch != keyset.epoch or now >= keyset.prune_due:
            self._refresh_keys(now)
        epoch = self._epoch  # the key set state self._headers was built from
        if self.cache_size:
            entry = self._cache.get(token)
            if entry is not None and entry[1] == keyset.epoch:
                claims = entry[0]
                if now >= claims.exp + self.skew:
                    self._cache.pop(token, None)
                    raise _reject("expired")
                self._check_revoked(claims)
                try:  # noqa: SIM105 - contextlib.suppress costs more than this whole hit
                    self._cache.move_to_end(token)
                except KeyError:  # another thread evicted it meanwhile
                    pass
                return claims
        # The compact-form check: ASCII, exactly three segments of the base64url alphabet, each
        # of a possible length (the strict decoding below). An empty segment goes no further
        # than an empty header, signature or JSON text would: rejected before anything is read.
        try:
            data = token.encode("ascii")
            header, payload, signature = data.split(b".")
        except (UnicodeEncodeError, ValueError):
            raise _reject("malformed") from None
        size, tail = len(payload), len(signature) & 3
        if size & 3 == 1 or tail == 1:
            raise _reject("malformed")
        try:
            raw_signature = a2b_base64(
                signature.translate(_TO_BASE64) + _PADDING[tail], strict_mode=True
            )
            # Decoded (the alphabet check), not read: nothing of it is parsed before the
            # signature has been verified.
            raw_payload = a2b_base64(
                payload.translate(_TO_BASE64) + _PADDING[size & 3], strict_mode=True
            )
        except Base64Error:
            raise _reject("malformed") from None
        key = self._headers.get(header)
        if key is None:
            key = self._foreign_header(header.decode("ascii"))
        if tail and signature[-1] not in _TAILS[tail]:
            raise _reject("signature")  # a second spelling of the same signature bytes
        if not key.verify(data[: len(header) + 1 + size], raw_signature):
            raise _reject("signature")
        if size & 3 and payload[-1] not in _TAILS[size & 3]:
            raise _reject("payload")
        try:
            text = raw_payload.decode()  # UTF-8 only
        except UnicodeDecodeError:
            raise _reject("payload") from None
        shape = self._our_shape(text)
        if shape is not None:
            # Exactly the JSON our issuer writes for these iss and aud, members in its order,
            # strings without escapes, integers in plain decimal (see _payload_shape): what
            # the JSON parser would return, read in one C call, with the types, iss, aud, sid,
            # sub and jti already checked by the pattern. Anything else takes the full path.
            sub, sid, issued, not_before, exp, jti, scope, level = shape.groups()
            iat = int(issued)
            nbf = iat if not_before == issued else int(not_before)  # ours: always equal
            exp = int(exp)
            skew = self.skew
            if now >= exp + skew:
                raise _reject("expired")
            late = now + skew
            if iat > late or nbf > late:
                raise _reject("not-yet-valid")
            if not iat < exp or exp - iat > self.max_lifetime:
                raise _reject("lifetime")
            level = int(level)
            issuer, audience = self.issuer, self.audience
            body = {
                "iss": issuer,
                "aud": audience,
                "sub": sub,
                "sid": sid,
                "iat": iat,
                "nbf": nbf,
                "exp": exp,
                "jti": jti,
                "scope": scope,
                "lvl": level,
            }
            claims = _new_claims(
                AccessClaims,
                (
                    issuer,
                    audience,
                    sub,
                    sid,
                    iat,
                    nbf,
                    exp,
                    jti,
                    scope,
                    level,
                    None,
                    self.typ,
                    key.kid,
                    MappingProxyType(body),
                ),
            )
        else:
            claims = self._full_claims(text, key.kid, now)
        revocations = self.revocations
        if revocations is not None:
            reason = revocations.reason(claims)
            if reason is not None:
                raise _reject(reason)
        if self.cache_size:
            self._remember(token, claims, epoch)
        return claims

    def _check_revoked(self, claims: AccessClaims) -> None:
        revocations = self.revocations
        if revocations is not None:
            reason = revocations.reason(claims)
            if reason is not None:
                raise _reject(reason)

    def _remember(self, token: str, claims: AccessClaims, epoch: int) -> None:
        cache = self._cache
        cache[token] = (claims, epoch)
        while len(cache) > self.cache_size:
            try:
                cache.popitem(last=False)
            except KeyError:  # pragma: no cover - emptied by another thread
                break

    def _refresh_keys(self, now: float) -> None:
        keyset = self.keyset
        keyset.prune(now)
        epoch = keyset.epoch  # read before the keys: a later change only forces a rebuild
        self._headers = {
            header_segment(key, self.typ).encode("ascii"): key
            for key in keyset.verification_keys().values()
        }
        self._cache = OrderedDict()
        self._epoch = epoch

    def _full_claims(self, text: str, kid: str, now: float) -> AccessClaims:
        """Claims from a payload of any other spelling: the JSON parser and every check."""
        try:
            body, end = _scan_payload(text, 0)
        except (ValueError, StopIteration, RecursionError):
            raise _reject("payload") from None
        if end != len(text) or type(body) is not dict:
            raise _reject("payload")
        try:
            iss, aud, sub, sid, iat, exp, jti = _REQUIRED(body)  # one C call for seven lookups
        except KeyError:
            raise _reject(
                "issuer" if "iss" not in body else "audience" if "aud" not in body else "claims"
            ) from None
        if iss != self.issuer:
            raise _reject("issuer")
        if aud != self.audience:
            raise _reject("audience")
        get = body.get
        nbf = get("nbf")
        if type(exp) is not int or type(iat) is not int or not (nbf is None or type(nbf) is int):
            raise _reject("claims")
        skew = self.skew
        if now >= exp + skew:
            raise _reject("expired")
        if iat > now + skew or (nbf is not None and nbf > now + skew):
            raise _reject("not-yet-valid")
        if not iat < exp or exp - iat > self.max_lifetime:
            raise _reject("lifetime")
        if type(sub) is not str or not sub or type(jti) is not str or not 0 < len(jti) <= 128:
            raise _reject("claims")
        if type(sid) is not str or len(sid) != 16 or not _SESSION_ID_CHARS.issuperset(sid):
            raise _reject("claims")
        scope, level, auth_time = get("scope", ""), get("lvl", 0), get("auth_time")
        if type(scope) is not str or type(level) is not int or level < 0:
            raise _reject("claims")
        if auth_time is not None and type(auth_time) is not int:
            raise _reject("claims")
        # tuple.__new__ directly: the NamedTuple's Python-level __new__ costs a call per token.
        return _new_claims(
            AccessClaims,
            (
                self.issuer,
                self.audience,
                sub,
                sid,
                iat,
                nbf,
                exp,
                jti,
                scope,
                level,
                auth_time,
                self.typ,
                kid,
                MappingProxyType(body),
            ),
        )

    def _foreign_header(self, segment: str) -> Key:
        """A header spelled differently from ours (another encoder): parse it strictly."""
        if len(segment) > _MAX_HEADER:
            raise _reject("header")
        if _BASE64URL.fullmatch(segment) is None:
            raise _reject("malformed")
        try:
            header = loads_object(b64decode(segment, checked_alphabet=True))
        except ValueError:
            raise _reject("header") from None
        if header.keys() != _HEADER_MEMBERS:
            raise _reject("header")  # jku, x5u, jwk, x5c, crit, a missing kid, ...
        alg, kid, typ = header["alg"], header["kid"], header["typ"]
        if type(alg) is not str or type(kid) is not str or type(typ) is not str:
            raise _reject("header")
        key = self.keyset.get(kid)
        if key is None:
            raise _reject("key-revoked" if self.keyset.is_revoked(kid) else "unknown-key")
        if alg != key.alg:  # exact match: "none", "None", "HS256" on an EC key, ...
            raise _reject("alg")
        if typ != self.typ:
            raise _reject("typ")
        return key

    # -- maintenance ------------------------------------------------------------------------

    def forget(self, token: str) -> None:
        """Drop one token from the cache (it is re-verified on its next presentation)."""
        self._cache.pop(token, None)

    def clear_cache(self) -> None:
        self._cache = OrderedDict()

    def __len__(self) -> int:
        return len(self._cache)
