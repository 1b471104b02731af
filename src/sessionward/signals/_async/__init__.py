"""Async sources of the signals package (the ``_sync`` twins are generated)."""
