"""Device Bound Session Credentials (W3C webappsec-dbsc) on the wire, without I/O.

The server offers a key binding with ``Secure-Session-Registration``; the browser answers at
the registration path with a ``dbsc+jwt`` it signed with a fresh private key, carrying that
key's public ``jwk`` in the header and our challenge as ``jti``. Every later refresh is a
``dbsc+jwt`` over a challenge we issued (``403`` + ``Secure-Session-Challenge``), verified with
the key stored at registration and never with one the request names.

Header values are Structured Field strings in the spec, but Chromium sends
``Secure-Session-Response`` and ``Sec-Secure-Session-Id`` bare: :func:`item_text` accepts both.
Only the current header names are sent; the ``Sec-Session-*`` names of older drafts are not.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable
from typing import Any, Final, NamedTuple

from sessionward.core.jwk import CLIENT_ALGORITHMS, ClientKey
from sessionward.core.jws import header_key, parse_compact
from sessionward.errors import InvalidArgument, InvalidProof

__all__ = [
    "CHALLENGE",
    "REGISTRATION",
    "RESPONSE",
    "SESSION_ID",
    "SKIPPED",
    "TYP",
    "Registration",
    "challenge_header",
    "end_config",
    "item_text",
    "parse_skipped",
    "registration_header",
    "session_config",
    "sf_string",
    "verify_refresh",
    "verify_registration",
]

REGISTRATION: Final = "secure-session-registration"
CHALLENGE: Final = "secure-session-challenge"
RESPONSE: Final = "secure-session-response"
SESSION_ID: Final = "sec-secure-session-id"
SKIPPED: Final = "secure-session-skipped"
TYP: Final = "dbsc+jwt"

_PRINTABLE = re.compile(r"[\x20-\x7e]*")
_BARE = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~:/-]+")  # tchar plus ":" and "/" (sf-token)
_QUOTED = re.compile(r'"((?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*)"')
_PARAM = re.compile(r';\s*([a-z*][a-z0-9_.*-]*)(?:=("(?:[^"\\]|\\["\\])*"|[^;,\s]*))?')


def sf_string(value: str) -> str:
    """``value`` as a Structured Field string (RFC 8941 §3.3.3): quoted, ``"`` and ``\\``
    escaped. Printable ASCII only."""
    if not isinstance(value, str) or _PRINTABLE.fullmatch(value) is None:
        raise InvalidArgument("a header parameter must be printable ASCII")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _unescape(quoted: str) -> str:
    return re.sub(r'\\(["\\])', r"\1", quoted[1:-1])


def item_text(value: str | None) -> str | None:
    """The text of a header holding one item, quoted (``"abc"``) or bare (``abc``); parameters
    after ``;`` are ignored. ``None`` for a missing, empty or malformed value."""
    if value is None:
        return None
    value = value.strip()
    quoted = _QUOTED.match(value)
    if quoted is not None:
        text, rest = _unescape(quoted.group()), value[quoted.end() :]
    else:
        bare = _BARE.match(value)
        if bare is None:
            return None
        text, rest = bare.group(), value[bare.end() :]
    if rest and not rest.lstrip().startswith(";"):
        return None
    return text or None


def _jws_text(value: str | None) -> str | None:
    """:func:`item_text` for a header holding a compact JWS. A bare value without ``"`` or
    ``;`` (what Chromium sends) is taken as it is: its characters are checked by the JWS
    parse, which refuses what :func:`item_text` would have refused."""
    if value is None or '"' in value or ";" in value:
        return item_text(value)
    return value.strip()


def parse_skipped(value: str | None) -> list[tuple[str, str | None]]:
    """``Secure-Session-Skipped: reason;session_identifier="sid", ...`` as ``(reason, sid)``
    pairs; malformed items are left out."""
    out: list[tuple[str, str | None]] = []
    for item in _split_list(value or ""):
        reason = _BARE.match(item)
        if reason is None:
            continue
        params = {m.group(1): _param_value(m.group(2)) for m in _PARAM.finditer(item, reason.end())}
        out.append((reason.group(), params.get("session_identifier")))
    return out


def _split_list(value: str) -> list[str]:
    """Split a list on the commas outside quoted strings."""
    items, start, quoted, escaped = [], 0, False, False
    for i, char in enumerate(value):
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            items.append(value[start:i].strip())
            start = i + 1
    items.append(value[start:].strip())
    return [item for item in items if item]


def _param_value(raw: str | None) -> str | None:
    if raw is None:
        return None
    return _unescape(raw) if raw.startswith('"') else raw


def registration_header(
    path: str,
    challenge: str,
    *,
    authorization: str | None = None,
    algorithms: Iterable[str] = CLIENT_ALGORITHMS,
) -> str:
    """The ``Secure-Session-Registration`` value offering a binding."""
    algs = tuple(algorithms)
    if not algs or any(a not in CLIENT_ALGORITHMS for a in algs):
        raise InvalidArgument(f"algorithms must be among {CLIENT_ALGORITHMS}")
    value = f"({' '.join(algs)});path={sf_string(path)};challenge={sf_string(challenge)}"
    if authorization is not None:
        value += f";authorization={sf_string(authorization)}"
    return value


def challenge_header(challenge: str, session_identifier: str) -> str:
    """The ``Secure-Session-Challenge`` value: a challenge for the named session."""
    return f"{sf_string(challenge)};id={sf_string(session_identifier)}"


class Registration(NamedTuple):
    """A registration JWT whose signature verified with the key it carries."""

    key: ClientKey
    jti: str


def _claim(claims: dict[str, Any], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value or len(value) > 512:
        raise InvalidProof(f"{name}-missing")
    return value


def verify_registration(
    text: str | None,
    *,
    algorithms: Iterable[str] = CLIENT_ALGORITHMS,
    authorization: str | None = None,
    audience: str | None = None,
) -> Registration:
    """Check a registration JWT: ``typ`` is ``dbsc+jwt``, ``alg`` one we offered, the header
    ``jwk`` a public key of that algorithm that verifies the signature, ``authorization``
    equal to the one we sent (when we sent one) and ``aud``, when the browser adds it, equal
    to ``audience`` (the registration URL). The caller checks ``jti`` against the challenges
    it issued. Raises :class:`~sessionward.errors.InvalidProof`."""
    jwt = parse_compact(_jws_text(text))
    header = jwt.header
    if header.get("typ") != TYP:
        raise InvalidProof("typ")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in tuple(algorithms):
        raise InvalidProof("alg")
    key = header_key(jwt.header_segment, alg)
    if not key.verify(jwt.signing_input, jwt.signature):
        raise InvalidProof("signature")
    claims = jwt.claims
    jti = _claim(claims, "jti")
    if authorization is not None:
        sent = claims.get("authorization")
        if not isinstance(sent, str) or not hmac.compare_digest(
            sent.encode("utf-8"), authorization.encode("utf-8")
        ):
            raise InvalidProof("authorization")
    if "aud" in claims and (audience is None or claims["aud"] != audience):
        raise InvalidProof("aud")
    return Registration(key, jti)


def verify_refresh(text: str | None, key: ClientKey) -> str:
    """Check a refresh JWT against the key stored at registration (a ``jwk`` in the header is
    ignored) and return its ``jti`` for the caller to match with an outstanding challenge."""
    jwt = parse_compact(_jws_text(text))
    if jwt.header.get("typ") != TYP:
        raise InvalidProof("typ")
    if jwt.header.get("alg") != key.alg:
        raise InvalidProof("alg")
    if not key.verify(jwt.signing_input, jwt.signature):
        raise InvalidProof("signature")
    return _claim(jwt.claims, "jti")


def session_config(
    session_identifier: str,
    *,
    refresh_url: str,
    cookie_name: str,
    cookie_attributes: str,
    origin: str | None = None,
    excludes: Iterable[str] = (),
) -> dict[str, Any]:
    """The session config JSON a registration (or refresh) answers with. ``excludes`` are path
    prefixes the bound cookie is not needed for (static files, public pages): the browser never
    holds a request to them back for a refresh. ``cookie_attributes`` must be exactly the
    attributes of the ``Set-Cookie`` the server sends (Path, Secure, HttpOnly, SameSite), or
    the browser keeps refreshing."""
    scope: dict[str, Any] = {
        "include_site": False,
        "scope_specification": [
            {"type": "exclude", "domain": "*", "path": path} for path in excludes
        ],
    }
    if origin is not None:
        scope["origin"] = origin
    return {
        "session_identifier": session_identifier,
        "refresh_url": refresh_url,
        "continue": True,
        "scope": scope,
        "credentials": [{"type": "cookie", "name": cookie_name, "attributes": cookie_attributes}],
        "allowed_refresh_initiators": [],
    }


def end_config() -> dict[str, Any]:
    """The body that ends the browser's bound session."""
    return {"continue": False}
