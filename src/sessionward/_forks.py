"""How many ``fork()``s separate this process from the one that imported sessionward.

A connection opened before a fork shares its socket with the parent: the child must open its
own. Stores remember ``_forks.generation`` beside each connection they keep and reuse it only
while the number is unchanged (an integer compare on the hot path, no system call).
"""

from __future__ import annotations

import os

__all__ = ["generation"]

generation = 0


def _after_fork() -> None:
    global generation
    generation += 1


os.register_at_fork(after_in_child=_after_fork)
