"""Async sources; the ``_sync`` twin beside this package is generated from them."""
