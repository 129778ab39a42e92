"""Chain ids in the key index: one process's chains stored in the order they were made.

ElixirScope's own correlation ids (a root call's chain) are ``mix64(n ^ P)`` then ``P``
in hex (``contracts.chains``): ``P`` random per process, ``n`` its chain number. The mix scatters one process's ids over
any order of their text, so that a person can shorten one to its first characters.
Stored as shown, each root call's new id went to a random leaf of the key index, and a
batch rewrote as many of its pages as it had root calls: a root call cost 8.8 µs of CPU
into a fresh data dir and 46 µs into one of 1.3 M keys (180 MB). So such an id is a
key of its own kind, :data:`KIND_CHAIN`, whose text is ``P`` then ``n`` (16 hex
characters each): one process's ids are appended in order, a few pages a batch.

Any other correlation id (an ``X-Correlation-ID``, a ``traceparent``'s trace id: 32 hex
characters whose unmixed number is not a small one) stays a ``c`` key as it is shown, as
do the chain ids of shards written before (a read looks a chain id up in both kinds).
A shortened chain id is found by going through each process's chain numbers
(:func:`chain_numbers`: the mix in C, some ms a million) rather than the index's order.
"""

from __future__ import annotations

from typing import Any

from elixirscope.contracts.chains import M64, MIX1, MIX2, mix64

__all__ = [
    "KIND_CHAIN",
    "MAX_CHAIN",
    "chain_numbers",
    "correlation_keys",
    "index_key",
    "shown",
]

KIND_CHAIN = "C"
MAX_CHAIN = 1 << 40
"""Chain numbers below this are a process's own (a trillion root calls); a foreign 32-hex
id unmixes to one below it once in 16 million, and is then a chain key: still one key,
shown as it came."""
_KIND_CORRELATION = "c"  # elixirscope.store._events.KIND_CORRELATION (no import cycle)
_I1, _I2 = pow(MIX1, -1, 1 << 64), pow(MIX2, -1, 1 << 64)


def _is_hex32(text: str) -> bool:
    return len(text) == 32 and not text.strip("0123456789abcdef")


def _unmix64(z: int) -> int:  # the inverse of contracts.chains.mix64
    z ^= (z >> 31) ^ (z >> 62)
    z = (z * _I2) & M64
    z ^= (z >> 27) ^ (z >> 54)
    z = (z * _I1) & M64
    return z ^ (z >> 30) ^ (z >> 60)


def index_key(cid: str) -> tuple[str, str]:
    """The key correlation id ``cid`` is indexed under: ``(KIND_CHAIN, P then n)`` for a
    chain id, else ``("c", cid)``."""
    if _is_hex32(cid):
        process = int(cid[16:], 16)
        n = _unmix64(int(cid[:16], 16)) ^ process
        if n < MAX_CHAIN:
            return KIND_CHAIN, "%016x%016x" % (process, n)
    return _KIND_CORRELATION, cid


def shown(kind: str, value: str) -> str:
    """The correlation id a correlation or chain key stands for (inverse of
    :func:`index_key`)."""
    if kind != KIND_CHAIN:
        return value
    process = int(value[:16], 16)
    return "%016x%016x" % (mix64(int(value[16:], 16) ^ process), process)


def correlation_keys(cid: str) -> list[tuple[str, str]]:
    """Every key ``cid`` may be indexed under: its own kind, and as shown (a chain id in a
    shard written before chain keys were)."""
    key = index_key(cid)
    return [key] if key[0] == _KIND_CORRELATION else [key, (_KIND_CORRELATION, cid)]


def _numbers_py(process: int, lo: int, hi: int, top: int, digits: int) -> list[int]:
    shift = 64 - 4 * digits
    return [n for n in range(lo, hi + 1) if digits == 0 or mix64(n ^ process) >> shift == top]


def chain_numbers(process: int, lo: int, hi: int, prefix: str) -> list[int]:
    """The chain numbers ``n`` in ``lo..hi`` whose id, as shown, starts with ``prefix``
    (its first 16 characters compared; the caller checks the process's part)."""
    try:  # here, not at import: a store that is only written never needs the capture's C
        from elixirscope.capture._speedups import chain_numbers as numbers
    except ImportError:  # pure Python: the same, a few hundred times slower
        numbers = _numbers_py
    head = prefix[:16]
    found: Any = numbers(process, lo, hi, int(head, 16) if head else 0, len(head))
    return list(found)
