"""Which items of two sequences are the same: Myers' O(ND) shortest edit script.

A state's list that gained an item in the middle should be recorded as that
insertion, not as every later item changed. :func:`matching` pairs the items
of ``old`` and ``new`` that an edit script keeps (equal keys, in order); all
others were removed or inserted. The common prefix and suffix are trimmed
first (appends and pops cost nothing else); past ``max_edits`` differences the
search stops and only the prefix and suffix are kept (the middle is then
recorded as replaced: still correct, just larger).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["MAX_EDITS", "matching"]

MAX_EDITS = 1000


def matching(
    old: Sequence[Any], new: Sequence[Any], max_edits: int = MAX_EDITS
) -> list[tuple[int, int]]:
    """Pairs ``(i, j)`` with ``old[i] == new[j]``, increasing in both, of a shortest edit."""
    n, m = len(old), len(new)
    start = 0
    while start < n and start < m and old[start] == new[start]:
        start += 1
    end_o, end_n = n, m
    while end_o > start and end_n > start and old[end_o - 1] == new[end_n - 1]:
        end_o -= 1
        end_n -= 1
    pairs = [(i, i) for i in range(start)]
    middle = _middle(old[start:end_o], new[start:end_n], max_edits)
    pairs.extend((i + start, j + start) for i, j in middle)
    pairs.extend((end_o + k, end_n + k) for k in range(n - end_o))
    return pairs


def _middle(a: Sequence[Any], b: Sequence[Any], max_edits: int) -> list[tuple[int, int]]:
    """Myers' greedy forward search with its trace, then the path walked back."""
    n, m = len(a), len(b)
    if not n or not m:
        return []
    offset = n + m
    v = [0] * (2 * offset + 2)
    trace: list[list[int]] = []
    for d in range(min(offset, max_edits) + 1):
        trace.append(v[:])
        for k in range(-d, d + 1, 2):
            if k == -d or (k != d and v[offset + k - 1] < v[offset + k + 1]):
                x = v[offset + k + 1]
            else:
                x = v[offset + k - 1] + 1
            y = x - k
            while x < n and y < m and a[x] == b[y]:
                x += 1
                y += 1
            v[offset + k] = x
            if x >= n and y >= m:
                return _walk_back(trace, a, b, offset, d)
    return []


def _walk_back(
    trace: list[list[int]], a: Sequence[Any], b: Sequence[Any], offset: int, d_end: int
) -> list[tuple[int, int]]:
    x, y = len(a), len(b)
    pairs: list[tuple[int, int]] = []
    for d in range(d_end, -1, -1):
        v = trace[d]
        k = x - y
        if d == 0:
            prev_k = k
            prev_x = 0
        elif k == -d or (k != d and v[offset + k - 1] < v[offset + k + 1]):
            prev_k = k + 1
            prev_x = v[offset + prev_k]
        else:
            prev_k = k - 1
            prev_x = v[offset + prev_k]
        prev_y = prev_x - prev_k
        start_x = prev_x if d == 0 else (prev_x if prev_k == k + 1 else prev_x + 1)
        start_y = start_x - k
        while x > start_x and y > start_y:
            x -= 1
            y -= 1
            pairs.append((x, y))
        x, y = prev_x, prev_y
    pairs.reverse()
    return pairs
