"""The two receivers: OpenID Connect Back-Channel Logout 1.0 and Shared Signals push
delivery (RFC 8935). Framework-neutral: each takes a request's body and headers and returns a
:class:`~sessionward.signals.reply.Reply` for whatever server mounts it
(:mod:`sessionward.signals.asgi`, :mod:`sessionward.signals.wsgi`, a Django view, the
service). This file is the source of truth; the ``_sync`` twin is generated.

A refused token changes nothing: the signature, ``iss``, ``aud``, times and claims are all
checked before the ``jti`` is spent, and the ``jti`` is spent (on every node, through the
store) before any session is touched. Each refusal is logged with its reason code and the
claimed issuer, never the token.
"""

from __future__ import annotations

import hmac
import logging
from typing import Final, Literal
from urllib.parse import parse_qs

from sessionward.core.events import RevokeReason
from sessionward.core.jws import SignedJwt
from sessionward.errors import StoreError
from sessionward.signals._async.jwks import AsyncKeySource
from sessionward.signals._async.links import AsyncIdpLinks
from sessionward.signals.claims import (
    LogoutRequest,
    Signal,
    TimeWindow,
    logout_request,
    set_signals,
)
from sessionward.signals.keys import SignalRejected, check_signature, parse_signed
from sessionward.signals.reply import Reply, json_reply

__all__ = ["AsyncBackchannelLogout", "AsyncSsfReceiver"]

_log = logging.getLogger("sessionward.signals")
MAX_BODY: Final = 32 * 1024
#: A logout form: the token and whatever else a provider adds (Back-Channel Logout 1.0 lets it
#: add values a receiver does not understand, to be ignored), a handful of short fields.
MAX_FORM_FIELDS: Final = 8
MAX_FORM_NAME: Final = 64
MAX_FORM_VALUE: Final = 256
_FORM: Final = "application/x-www-form-urlencoded"
_SET: Final = "application/secevent+jwt"
CompromisePolicy = Literal["revoke", "step-up"]


def _media(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


async def _verified(source: AsyncKeySource, token: object) -> SignedJwt:
    jwt = parse_signed(token, source.algorithms)
    check_signature(jwt, await source.keys_for(jwt))
    return jwt


class AsyncBackchannelLogout:
    """Receives ``logout_token`` POSTs from the identity provider ``keys.issuer`` for the
    client ``client_id`` and ends the linked sessions (``RevokeReason.IDP_LOGOUT``)."""

    def __init__(
        self,
        links: AsyncIdpLinks,
        keys: AsyncKeySource,
        *,
        client_id: str,
        window: TimeWindow | None = None,
    ) -> None:
        self.links = links
        self.keys = keys
        self.client_id = client_id
        self.window = window or TimeWindow()

    async def handle(self, body: bytes, content_type: str | None) -> Reply:
        """The answer to one back-channel logout request: 200 (sessions ended, or none was
        linked), 400 ``invalid_request`` for a refused token, 503 when the keys or the store
        cannot be reached (the provider retries)."""
        try:
            request = await self.verify(_logout_token(body, content_type))
        except SignalRejected as exc:
            _log.warning("back-channel logout refused: %s (from %s)", exc.reason, self.keys.issuer)
            if exc.code == "temporarily_unavailable":
                return json_reply(503, {"error": "temporarily_unavailable"})
            return json_reply(400, {"error": "invalid_request", "error_description": exc.reason})
        except StoreError as exc:
            _log.error("back-channel logout not checked: store error %s", type(exc).__name__)
            return json_reply(503, {"error": "temporarily_unavailable"})
        try:
            ended = await self.act(request)
        except StoreError as exc:
            _log.error("back-channel logout not applied: store error %s", type(exc).__name__)
            await self.links.forget_use("bcl", _spent(request.iss, request.jti))
            return json_reply(503, {"error": "temporarily_unavailable"})
        _log.info("back-channel logout from %s ended %d session(s)", self.keys.issuer, ended)
        return Reply(200, (("cache-control", "no-store"),), b"")

    async def verify(self, token: object) -> LogoutRequest:
        """The checked request of ``token``, its ``jti`` spent; ``SignalRejected`` otherwise."""
        jwt = await _verified(self.keys, token)
        now = self.keys.clock.now()
        request = logout_request(
            jwt, issuer=self.keys.issuer, audience=self.client_id, now=now, window=self.window
        )
        until = now + self.window.replay_window
        if not await self.links.first_use("bcl", _spent(request.iss, request.jti), until):
            raise SignalRejected("replayed")
        return request

    async def act(self, request: LogoutRequest) -> int:
        if request.sid is not None:
            return await self.links.end_sid(request.iss, request.sid)
        return await self.links.end_sub(request.iss, request.sub or "")


def _spent(iss: str, jti: str) -> str:
    """The replay cache's key of a ``jti`` (unique per issuer only)."""
    return f"{iss}\x00{jti}"


def _logout_token(body: bytes, content_type: str | None) -> str:
    if _media(content_type) != _FORM or len(body) > MAX_BODY:
        raise SignalRejected("not-a-form")
    try:
        form = parse_qs(body.decode("ascii"), strict_parsing=True, max_num_fields=MAX_FORM_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise SignalRejected("not-a-form") from None
    tokens = form.pop("logout_token", [])
    if len(tokens) != 1:
        raise SignalRejected("no-logout-token")
    for name, values in form.items():
        if len(name) > MAX_FORM_NAME or any(len(v) > MAX_FORM_VALUE for v in values):
            raise SignalRejected("form-value-too-long")
    return tokens[0]


class AsyncSsfReceiver:
    """Receives pushed SETs (RFC 8935) from the transmitter ``keys.issuer`` addressed to
    ``audience``, and acts on CAEP ``session-revoked`` (end the named sessions), RISC
    ``account-disabled`` (end every session of the user) and RISC ``credential-compromise``
    (``on_compromise``: ``revoke`` every session of the user, or ``step-up``: keep them but
    lower them to level 0 so the next sensitive action asks for a new sign-in).
    ``authorization``, when set, is the exact ``Authorization`` header the transmitter must
    send (SSF's ``authorization_header``)."""

    def __init__(
        self,
        links: AsyncIdpLinks,
        keys: AsyncKeySource,
        *,
        audience: str,
        window: TimeWindow | None = None,
        on_compromise: CompromisePolicy = "revoke",
        authorization: str | None = None,
    ) -> None:
        if on_compromise not in ("revoke", "step-up"):
            raise ValueError("on_compromise must be 'revoke' or 'step-up'")
        self.links = links
        self.keys = keys
        self.audience = audience
        self.window = window or TimeWindow()
        self.on_compromise = on_compromise
        self._authorization = None if authorization is None else authorization.encode()

    async def handle(
        self, body: bytes, content_type: str | None, authorization: str | None = None
    ) -> Reply:
        """The answer to one push: 202 when accepted (acted on, or an event this receiver
        does not act on), 400 with RFC 8935's ``err`` codes when refused, 401 when the
        configured ``Authorization`` is missing or wrong, 503 when keys or store fail."""
        try:
            self._authenticate(authorization)
            if _media(content_type) != _SET or len(body) > MAX_BODY:
                raise SignalRejected("not-a-set")
            try:
                token = body.decode("ascii").strip()
            except UnicodeDecodeError:
                raise SignalRejected("malformed") from None
            jti, signals = await self.verify(token)
        except SignalRejected as exc:
            _log.warning("security event refused: %s (from %s)", exc.reason, self.keys.issuer)
            return _refusal(exc)
        except StoreError as exc:
            _log.error("security event not checked: store error %s", type(exc).__name__)
            return json_reply(503, {"err": "temporarily_unavailable"})
        try:
            ended = sum([await self.act(signal) for signal in signals])
        except StoreError as exc:
            _log.error("security event not applied: store error %s", type(exc).__name__)
            await self.links.forget_use("set", _spent(self.keys.issuer, jti))
            return json_reply(503, {"err": "temporarily_unavailable"})
        _log.info("security event from %s changed %d session(s)", self.keys.issuer, ended)
        return Reply(202, (("cache-control", "no-store"),), b"")

    def _authenticate(self, authorization: str | None) -> None:
        expected = self._authorization
        if expected is None:
            return
        given = (authorization or "").encode()
        if not hmac.compare_digest(given, expected):
            raise SignalRejected("unauthenticated", "authentication_failed")

    async def verify(self, token: str) -> tuple[str, list[Signal]]:
        """The ``jti`` and the understood events of ``token``, its ``jti`` spent;
        ``SignalRejected`` otherwise."""
        jwt = await _verified(self.keys, token)
        now = self.keys.clock.now()
        jti, signals = set_signals(
            jwt, issuer=self.keys.issuer, audience=self.audience, now=now, window=self.window
        )
        until = now + self.window.replay_window
        if not await self.links.first_use("set", _spent(self.keys.issuer, jti), until):
            raise SignalRejected("replayed")
        return jti, signals

    async def act(self, signal: Signal) -> int:
        """Apply one event; returns how many sessions it ended or changed."""
        links = self.links
        if signal.kind == "session-revoked":
            reason = RevokeReason.SHARED_SIGNAL
            if signal.sid is not None:
                return await links.end_sid(signal.iss, signal.sid, reason=reason)
            return await links.end_sub(signal.iss, signal.sub or "", reason=reason)
        if signal.sub is None:
            return 0  # account events name a user
        if signal.kind == "account-disabled":
            return await links.end_sub(signal.iss, signal.sub, reason=RevokeReason.ACCOUNT_DISABLED)
        if self.on_compromise == "step-up":
            return await links.step_up_sub(signal.iss, signal.sub)
        return await links.end_sub(
            signal.iss, signal.sub, reason=RevokeReason.CREDENTIAL_COMPROMISE
        )


def _refusal(exc: SignalRejected) -> Reply:
    if exc.code == "temporarily_unavailable":
        return json_reply(503, {"err": "temporarily_unavailable"})
    if exc.reason == "unauthenticated":
        return json_reply(401, {"err": exc.code, "description": "authentication failed"})
    known = ("invalid_key", "invalid_issuer", "invalid_audience", "authentication_failed")
    code = exc.code if exc.code in known else "invalid_request"
    return json_reply(400, {"err": code, "description": exc.reason})
