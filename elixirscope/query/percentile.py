"""One percentile for every read: ``summary``, ESQL's ``p50/p95/p99`` and ``diff``.

Nearest rank: the q-quantile of n sorted values is the smallest value that at
least ``q * n`` of them do not exceed (the value at rank ``ceil(q * n)``), as
SQL's ``quantile_disc`` and DuckDB compute it — so a figure from ``summary``,
from a query and from DuckDB over a Parquet export of the same events agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["nearest_rank", "nearest_rank_index"]


def nearest_rank_index(n: int, q: float) -> int:
    """Where the ``q``-quantile (0 < q <= 1) of ``n`` sorted values is: ``ceil(q n) - 1``."""
    parts = round(q * 10_000)  # exact for p50/p95/p99: no float ceil surprises
    rank = -(-parts * n // 10_000)
    return min(n - 1, max(0, rank - 1))


def nearest_rank(ordered: Sequence[Any], q: float) -> Any:
    """The ``q``-quantile (0 < q <= 1) of ``ordered`` (sorted, not empty) by nearest rank."""
    return ordered[nearest_rank_index(len(ordered), q)]
