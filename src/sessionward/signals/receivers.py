"""The public names of the receivers: import them from here.

* :class:`IdpLink` — the identity provider's ``iss``/``sid``/``sub`` of a login;
  :class:`AsyncIdpLinks` / :class:`IdpLinks` index it and find the sessions again.
* :class:`AsyncKeySource` / :class:`KeySource` — an issuer's JWK set, fetched and cached.
* :class:`AsyncBackchannelLogout` / :class:`BackchannelLogout` — OpenID Connect Back-Channel
  Logout 1.0.
* :class:`AsyncSsfReceiver` / :class:`SsfReceiver` — Shared Signals push delivery (CAEP,
  RISC).
* :class:`Reply` — what a receiver answers; :mod:`sessionward.signals.asgi` and
  :mod:`sessionward.signals.wsgi` mount a receiver in a web application.
"""

from __future__ import annotations

from sessionward.signals._async.jwks import AsyncKeySource
from sessionward.signals._async.links import AsyncIdpLinks
from sessionward.signals._async.receiver import AsyncBackchannelLogout, AsyncSsfReceiver
from sessionward.signals._sync.jwks import KeySource
from sessionward.signals._sync.links import IdpLinks
from sessionward.signals._sync.receiver import BackchannelLogout, SsfReceiver
from sessionward.signals.claims import TimeWindow
from sessionward.signals.keys import SignalRejected
from sessionward.signals.links import IdpLink
from sessionward.signals.reply import Reply

__all__ = [
    "AsyncBackchannelLogout",
    "AsyncIdpLinks",
    "AsyncKeySource",
    "AsyncSsfReceiver",
    "BackchannelLogout",
    "IdpLink",
    "IdpLinks",
    "KeySource",
    "Reply",
    "SignalRejected",
    "SsfReceiver",
    "TimeWindow",
]
