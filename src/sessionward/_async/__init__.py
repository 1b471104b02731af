"""Async sources of truth. ``sessionward._sync`` is generated from this package by
``scripts/unasync.py``; edit here, then regenerate."""
