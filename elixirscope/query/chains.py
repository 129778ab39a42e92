"""A run's correlation chains, listed: what ``calltree`` shows when given no chain.

A person opening a call tree rarely knows a chain's id; they know what started it
("the request to /checkout", "main") and roughly when. Each chain is listed with its
first top-level call, how many top-level calls it holds (an in-process client's
chain holds every request it made), the thread it began on, its calls, when it started
and how long it ran, oldest first. Read through ESQL's call columns (three queries,
whatever the run's size), so the list agrees with ``query``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["SHOWN", "Chain", "chains_text", "run_chains"]

SHOWN = 40
"""Chains listed at most (the oldest first; the rest counted)."""
_ROOTS_READ = 5000
"""Top-level calls read in one query to name the chains' first ones; a chain whose first
one is not among them is asked for on its own (only the chains shown)."""


@dataclass(frozen=True)
class Chain:
    """One correlation chain of a run."""

    id: str
    calls: int
    start: int  # ns, its first call's
    end: int | None  # ns, its last call's end (None: none ended)
    first: str  # its first top-level call's function
    roots: int  # its top-level calls
    thread: str  # the thread its first top-level call ran on

    def to_dict(self) -> dict[str, Any]:
        return {
            "chain": self.id,
            "calls": self.calls,
            "start": self.start,
            "end": self.end,
            "first": self.first,
            "roots": self.roots,
            "thread": self.thread,
        }


def run_chains(data_dir: str, run_id: str | None) -> tuple[list[Chain], int]:
    """The chains of run ``run_id`` (None: every run), oldest first, at most ``SHOWN``,
    and how many there are."""
    from elixirscope.query.esql.api import run as esql
    from elixirscope.query.esql.lexer import string_literal

    def rows(query: str) -> list[tuple[Any, ...]]:
        with esql(query, data_dir, run=run_id, all_runs=run_id is None, timeout=None) as found:
            return list(found.tuples())

    spans = rows(
        "chain, count(*), min(start), max(end) from calls where chain != null "
        "group by chain order by min(start)"
    )
    roots = rows("chain, count(*) from calls where depth = 0 group by chain")
    per_chain = {chain: n for chain, n in roots}
    first: dict[str, tuple[str, str]] = {}
    for chain, function, thread in rows(
        f"chain, function, thread from calls where depth = 0 order by start limit {_ROOTS_READ}"
    ):
        first.setdefault(chain, (function, thread))
    shown = []
    for chain, calls, start, end in spans[:SHOWN]:
        named = first.get(chain)
        if named is None:
            alone = rows(
                f"function, thread from calls where chain = {string_literal(chain)} "
                "order by start limit 1"
            )
            named = (alone[0][0], alone[0][1]) if alone else ("?", "?")
        function, thread = named
        shown.append(
            Chain(
                chain, int(calls), int(start), end, function, per_chain.get(chain, 0), thread or "?"
            )
        )
    return shown, len(spans)


def chains_text(
    chains: list[Chain], total: int, command: str = "calltree", where: str = "in this run"
) -> str:
    """The chains as a table, with the line that says how to open one."""
    from elixirscope.query.calltree import format_duration
    from elixirscope.query.esql.render import clock

    if not chains:
        return f"(no calls recorded {where}: no chain to show)"
    rows = [("CHAIN", "CALLS", "STARTED", "DURATION", "THREAD", "FIRST CALL")]
    for c in chains:
        more = f"  (+{c.roots - 1:,} more top-level calls)" if c.roots > 1 else ""
        took = format_duration(c.end - c.start) if c.end is not None else "running"
        rows.append((c.id[:12], f"{c.calls:,}", clock(c.start), took, c.thread, c.first + more))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = [
        f"{total:,} chain{'s' if total != 1 else ''} {where}"
        + (f" (the oldest {len(chains)} shown)" if total > len(chains) else "")
        + f"; give one to see its calls: elixirscope {command} ID (any unique prefix)"
    ]
    for r in rows:
        lines.append(
            f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:<{widths[2]}}  "
            f"{r[3]:>{widths[3]}}  {r[4]:<{widths[4]}}  {r[5]}"
        )
    return "\n".join(lines)
