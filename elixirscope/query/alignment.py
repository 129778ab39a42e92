"""Which items of two recordings are the same place: two sequences aligned.

Two runs of one program call the same functions in the same order, except
where they differ. :func:`align` pairs the items of two sequences in two
passes: first items that are *the same* (equal ``exact`` keys: a function and
its arguments) anchor the alignment, by a shortest edit script (Myers,
``elixirscope.state.myers``); then, between two anchors, items *of the same
kind* (equal ``kind`` keys: the function alone) are paired in order — the
same place, with different values. What is left was only in one sequence.

So a loop that ran one iteration fewer loses exactly that iteration (not every
later one shifted by one), and a call whose argument changed is one changed
call, not a call removed and another added. Memory stays bounded: the edit
script's search is capped by the sequences' lengths, and past the cap the
pairing falls back to an in-order greedy match, which is exact wherever the
sequences agree.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

from elixirscope.state.myers import MAX_EDITS, matching

__all__ = ["align"]

T = TypeVar("T")

SEARCH_CELLS = 4_000_000
"""At most this many cells of Myers' trace (8 bytes each, 32 MB) per alignment."""


def align(
    old: Sequence[T],
    new: Sequence[T],
    exact: Callable[[T], Hashable],
    kind: Callable[[T], Hashable],
) -> list[tuple[int | None, int | None]]:
    """Index pairs in order of both sequences: ``(i, j)`` the same place (exactly equal
    or the same kind), ``(i, None)`` only in ``old``, ``(None, j)`` only in ``new``."""
    keys_old, keys_new = [exact(x) for x in old], [exact(y) for y in new]
    if keys_old == keys_new:  # the usual case: nothing differs here
        return [(i, i) for i in range(len(old))]
    anchors = _pairs(keys_old, keys_new)
    out: list[tuple[int | None, int | None]] = []
    prev_i = prev_j = 0
    for i, j in [*anchors, (len(old), len(new))]:
        if i > prev_i or j > prev_j:
            gap_old, gap_new = old[prev_i:i], new[prev_j:j]
            inner = _pairs([kind(x) for x in gap_old], [kind(y) for y in gap_new])
            out.extend(_merged(inner, prev_i, prev_j, len(gap_old), len(gap_new)))
        if i < len(old):
            out.append((i, j))
        prev_i, prev_j = i + 1, j + 1
    return out


def _merged(
    pairs: list[tuple[int, int]], base_i: int, base_j: int, n: int, m: int
) -> list[tuple[int | None, int | None]]:
    """``pairs`` (relative to a gap) with the unpaired items between them, in order."""
    out: list[tuple[int | None, int | None]] = []
    i = j = 0
    for pi, pj in [*pairs, (n, m)]:
        out.extend((base_i + k, None) for k in range(i, pi))
        out.extend((None, base_j + k) for k in range(j, pj))
        if pi < n:
            out.append((base_i + pi, base_j + pj))
        i, j = pi + 1, pj + 1
    return out


def _pairs(old: list[Hashable], new: list[Hashable]) -> list[tuple[int, int]]:
    """Equal items paired, increasing in both: a shortest edit script where its search
    fits :data:`SEARCH_CELLS`, completed by an in-order greedy match."""
    if not old or not new:
        return []
    width = 2 * (len(old) + len(new)) + 2
    budget = max(16, min(MAX_EDITS, SEARCH_CELLS // width))
    anchors = matching(old, new, budget)
    return _fill(old, new, anchors)


def _fill(
    old: list[Hashable], new: list[Hashable], anchors: list[tuple[int, int]]
) -> list[tuple[int, int]]:
    """``anchors`` plus, between each two, equal items paired greedily in order (nothing
    to add after a complete edit script; the pairs it could not search for otherwise)."""
    out: list[tuple[int, int]] = []
    prev_i = prev_j = 0
    for i, j in [*anchors, (len(old), len(new))]:
        if i > prev_i and j > prev_j:
            out.extend(_greedy(old, new, prev_i, i, prev_j, j))
        if i < len(old):
            out.append((i, j))
        prev_i, prev_j = i + 1, j + 1
    return out


def _greedy(
    old: list[Hashable], new: list[Hashable], i0: int, i1: int, j0: int, j1: int
) -> list[tuple[int, int]]:
    """Each item of ``old[i0:i1]`` paired with the next equal one of ``new[j0:j1]``."""
    where: dict[Hashable, list[int]] = {}
    for j in range(j0, j1):
        where.setdefault(new[j], []).append(j)
    out: list[tuple[int, int]] = []
    after = j0
    for i in range(i0, i1):
        spots = where.get(old[i])
        if not spots:
            continue
        k = bisect.bisect_left(spots, after)
        if k < len(spots):
            out.append((i, spots[k]))
            after = spots[k] + 1
    return out
