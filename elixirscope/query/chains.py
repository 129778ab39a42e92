"""A run's correlation chains, listed: what ``calltree`` shows when given no chain.

A person opening a call tree rarely knows a chain's id; they know what started it
("the request to /checkout", "main") and roughly when. Each chain is listed with its
first top-level call, how many top-level calls it holds (an in-process client's
chain holds every request it made), the thread it began on, its calls, when it started
and how long it ran, oldest first; and, for a chain a recorded call started (a thread, a
thread pool's task, a process, work handed to a process pool), what began it and from
which call (``pool task ← batch``). Read through ESQL's call and thread columns (four
queries, whatever the run's size), so the list agrees with ``query``.
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
    started_by: tuple[str, str] | None = None  # (what began it, the call it began in)

    def to_dict(self) -> dict[str, Any]:
        return {
            "chain": self.id,
            "calls": self.calls,
            "start": self.start,
            "end": self.end,
            "first": self.first,
            "roots": self.roots,
            "thread": self.thread,
            "started": None if self.started_by is None else self.started_by[0],
            "started_in": None if self.started_by is None else self.started_by[1],
        }

    @property
    def origin(self) -> str:
        """``pool task ← batch``: what began this chain, in which call ('' when none did)."""
        if self.started_by is None:
            return ""
        what, call = self.started_by
        parts = call.split(".")
        keep = 2 if len(parts) > 2 and parts[-2][:1].isupper() else 1  # Class.method
        return f"{what} ← {'.'.join(parts[-keep:])}"


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
    began = {
        chain: (str(what), str(call))
        for chain, what, call in rows(
            "gives_chain, started, parent from threads where gives_chain != null and parent != null"
        )
    }
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
                chain,
                int(calls),
                int(start),
                end,
                function,
                per_chain.get(chain, 0),
                thread or "?",
                began.get(chain),
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
    origins = any(c.started_by for c in chains)  # the FROM column, when any chain has one
    rows = [("CHAIN", "CALLS", "STARTED", "DURATION", "THREAD", "FROM", "FIRST CALL")]
    for c in chains:
        more = f"  (+{c.roots - 1:,} more top-level calls)" if c.roots > 1 else ""
        took = format_duration(c.end - c.start) if c.end is not None else "running"
        rows.append(
            (c.id[:12], f"{c.calls:,}", clock(c.start), took, c.thread, c.origin, c.first + more)
        )
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    lines = [
        f"{total:,} chain{'s' if total != 1 else ''} {where}"
        + (f" (the oldest {len(chains)} shown)" if total > len(chains) else "")
        + f"; give one to see its calls: elixirscope {command} ID (any unique prefix)"
    ]
    for r in rows:
        origin = f"{r[5]:<{widths[5]}}  " if origins else ""
        lines.append(
            f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:<{widths[2]}}  "
            f"{r[3]:>{widths[3]}}  {r[4]:<{widths[4]}}  {origin}{r[6]}"
        )
    return "\n".join(lines)
