"""Signals for the risk engine, from the request context the web adapters capture.

Needs the ``risk`` extra (``pip install 'sessionward[risk]'``): ``geoip2fast`` for the
offline address -> network owner and country data (derived from MaxMind's GeoLite2), and
``ua-parser`` for user agents. The engine itself (:mod:`sessionward.core.risk`) needs neither.

    from sessionward.risk import Enricher

    enricher = Enricher()
    observation = enricher.observe(context, clock.now())
"""

from __future__ import annotations

from sessionward.risk.enrich import Enricher
from sessionward.risk.networks import GeoLookup, NetworkKinds, geoip2fast_lookup, prefix_of

__all__ = ["Enricher", "GeoLookup", "NetworkKinds", "geoip2fast_lookup", "prefix_of"]
