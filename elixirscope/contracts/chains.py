"""ElixirScope's chain ids: the correlation id a root call starts, shared by the capture
that makes them and the store that indexes them.

A chain id is ``mix64(n ^ P)`` then ``P``, 32 lowercase hex characters (the shape of
``uuid4().hex``): ``P`` random per process (drawn again in a forked child), ``n`` its
chain number from 1. ``mix64`` (splitmix64's finalizer) is a bijection, so the ids of
one process differ in their first characters, which is what a person types when
shortening one; the store inverts it to index them by ``P`` and ``n``
(``store.chain_keys``). The C accelerator makes the same ids (``_speedups.c``:
``chain_text``).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable

__all__ = ["M64", "chain_ids", "mix64"]

M64 = (1 << 64) - 1
MIX1, MIX2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB


def mix64(z: int) -> int:
    """splitmix64's finalizer: a bijection of 64-bit numbers."""
    z = ((z ^ (z >> 30)) * MIX1) & M64
    z = ((z ^ (z >> 27)) * MIX2) & M64
    return z ^ (z >> 31)


def chain_ids() -> Callable[[], str]:
    """Fresh chain ids of a process of its own (a new ``P``), numbered from 1."""
    prefix = int.from_bytes(os.urandom(8), "big")
    counter = itertools.count(1)

    def next_id() -> str:
        return "%016x%016x" % (mix64(next(counter) ^ prefix), prefix)

    return next_id
