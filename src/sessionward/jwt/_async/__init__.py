"""The token service, async source (``sessionward.jwt._sync`` is generated from it)."""
