"""DPoP (RFC 9449) through the REST API: a backend passes on its client's proof.

The client signs a ``DPoP`` proof for each request it makes to the backend; the backend sends
that header's value, with the method and absolute URL of the client's request, in the ``dpop``
field of an API call. At issue (and at a JWT-mode login) a checked proof binds the new
session to the proof's key; a session bound so is then validated (or refreshed) only with a
fresh proof of that key, made for that token (``ath``). Each proof's ``jti`` is spent in the
session store, shared by every node. The service sends no nonces.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from sessionward.core import binding as states
from sessionward.core.dpop import DpopPolicy
from sessionward.core.record import Session
from sessionward.manager._async.binding import AsyncBinder
from sessionward.manager._async.manager import AsyncSessionManager
from sessionward.service.api_fields import Fields

__all__ = ["POLICY", "PassedProof", "bound_key", "check", "passed_proof"]

POLICY: Final = DpopPolicy()


class PassedProof(NamedTuple):
    """A client's proof as its backend passed it on."""

    proof: str
    method: str
    url: str


def passed_proof(fields: Fields) -> PassedProof | None:
    """The ``dpop`` field of a request body (``proof``, ``method``, ``url``), or ``None``."""
    raw = fields.mapping("dpop")
    if raw is None:
        return None
    dpop = Fields(raw, {"proof", "method", "url"}, "dpop")
    return PassedProof(
        dpop.string("proof", required=True, limit=8192) or "",
        dpop.string("method", required=True, limit=16) or "",
        dpop.string("url", required=True, limit=2048) or "",
    )


def bound_key(session: Session) -> str | None:
    """The thumbprint of the DPoP key ``session`` is bound to, if any."""
    if states.MARK not in session.record.data:  # the common case: no JSON parse
        return None
    state = states.state_of(session.data)
    jkt = state.get("jkt") if state is not None and state.get("method") == "dpop" else None
    return jkt if isinstance(jkt, str) else None


async def check(
    manager: AsyncSessionManager,
    passed: PassedProof | None,
    *,
    token: str | None = None,
    session: Session | None = None,
) -> str | None:
    """Check a passed-on proof (for ``token`` when given, by the key ``session`` is bound to
    when it is) and spend its ``jti``; returns its key's thumbprint, ``None`` when no proof was
    passed and none is needed. Raises :class:`~sessionward.errors.InvalidProof`; a refusal for
    a bound session is an event of that session."""
    jkt = None if session is None else bound_key(session)
    if passed is None and jkt is None:
        return None
    checked = await AsyncBinder(manager).check_dpop(
        POLICY,
        None if passed is None else passed.proof,
        method="" if passed is None else passed.method,
        url="" if passed is None else passed.url,
        access_token=token,
        jkt=jkt,
        session=session,
    )
    return checked.jkt
