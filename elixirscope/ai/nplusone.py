"""N+1 queries: the same statement run again and again, one row at a time.

Sentry's rule, on recorded queries: at least ``n_plus_one_min_queries``
similar reads (``SELECT``) (the same normalized SQL issued from the same line) run one
after another under one parent — a web request (each its own, also when requests share
a chain, as an in-process client's do), or a correlation chain, else one thread of one
process — taking at least ``n_plus_one_min_total_ms``
together. Fewer milliseconds than that is still the pattern, only not yet
costly (a local SQLite answers in microseconds what a networked database
answers in milliseconds): such a group is a ``low`` finding that says so.
A WebSocket connection's queries are left out: they repeat as its messages come and
go (a poll pushing updates), which no single query before a loop could replace.
What Sentry cannot say, the recording can: the loop's source line
(the loop around the issuing line, or, when each query sits in a helper, the
loop that calls the helper) and which parameter varies between the queries.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from elixirscope.ai.findings import Finding, Location
from elixirscope.ai.query_groups import (
    QueryGroup,
    loop_of,
    n_plus_one_severity,
    query_groups,
    short_statement,
    varying,
)
from elixirscope.ai.recording import Recording
from elixirscope.ai.settings import InsightSettings

__all__ = ["detect_n_plus_one"]

_CATALOG = re.compile(r"\b(sqlite_master|sqlite_schema|pg_catalog|information_schema)\b", re.I)
"""The databases' own catalogs: queries of them look at the schema, not the program's rows."""


def detect_n_plus_one(recording: Recording, settings: InsightSettings) -> list[Finding]:
    sockets = {
        (se.producer, se.event.parent_id)
        for se in recording.of("req")
        if se.event.protocol == "websocket"
    }  # a WebSocket connection's own call: its queries repeat as messages come (a poll)

    def reads(se: Any, shape: str) -> bool:
        if not shape.startswith(("SELECT", "WITH")):
            return False  # as Sentry's rule: reads (a unit of work's inserts are not N+1)
        if _CATALOG.search(shape):
            return False  # a schema's introspection (a migration asking of each table)
        request = recording.request_call(se.producer, se.event.parent_id)
        return request is None or (se.producer, request) not in sockets

    made: list[tuple[Finding, QueryGroup, Location | None]] = []
    for group in query_groups(recording, reads, settings.n_plus_one_min_queries):
        loop = loop_of(recording, group)
        made.append((_finding(recording, group, settings, loop), group, loop))
    _tell_loop_mates(made)
    return [finding for finding, *_ in made]


def _tell_loop_mates(made: list[tuple[Finding, QueryGroup, Location | None]]) -> None:
    """Statements one loop ran in turn (a Django loop following two foreign keys: a book,
    then its author, each row) are each a finding; each names the others, and does not say
    its queries ran one after another when the others' ran between them."""
    by_loop: dict[tuple[Any, str, int], list[tuple[Finding, list[Any]]]] = defaultdict(list)
    for finding, group, loop in made:
        if loop is not None:
            by_loop[(group.parent, loop.file, loop.line)].append((finding, group.found))
    for mates in by_loop.values():
        if len(mates) < 2:
            continue
        for finding, found in mates:
            first, last = found[0].ts, found[-1].ts
            others = [(f, q) for f, q in mates if f is not finding]
            if any(first < se.ts < last for _, q in others for se in q):
                finding.explanation = finding.explanation.replace(
                    " times one after another", " times (in turn with the loop's other queries)", 1
                )
            said = "; ".join(
                f"`{short_statement(f.details['statement'])}` {len(q)} times ({f.id})"
                for f, q in others
            )
            finding.explanation += (
                f" The same loop also ran {said}: one eager load can serve them all."
            )
            finding.details["same_loop"] = [f.id for f, _ in others]


def _finding(
    recording: Recording, group: QueryGroup, settings: InsightSettings, loop: Location | None
) -> Finding:
    shape, n, ms = group.shape, len(group.found), group.ms
    cheap = ms < settings.n_plus_one_min_total_ms
    varies = varying(group.found)
    loop_text = f" inside the loop at {loop}" if loop is not None else ""
    explanation = (
        f"The same query ran {n} times one after another{group.where()}{loop_text}, "
        f"taking {ms:.1f} ms together: `{shape}`. {varies['text']} "
        "Each round trip costs a query's fixed overhead, so the time grows with the "
        "number of rows the loop walks (the N+1 pattern)."
        + (
            f" Here they took less than the {settings.n_plus_one_min_total_ms:g} ms that makes "
            "it costly (insights.n_plus_one_min_total_ms), but each new row adds a round trip."
            if cheap
            else ""
        )
    )
    column = group.key_column(varies)
    fix = (
        "Fetch the rows in one query before the loop: "
        + (
            f"`... WHERE {column} IN (...)` with every value at once, "
            if column
            else "one query with an IN (...) list or a JOIN, "
        )
        + "then look each row up in a dict inside the loop (with an ORM: eager loading — "
        "SQLAlchemy's selectinload, Django's select_related for a ForeignKey the loop follows, "
        "prefetch_related for a reverse or many-to-many relation)."
    )
    return Finding(
        kind="n_plus_one",
        severity=n_plus_one_severity(n, ms, cheap),
        title=f"N+1 queries: {n} x `{short_statement(shape)}`",
        weight=n,
        explanation=explanation,
        fix=fix,
        run=recording.run,
        key=group.key(),
        evidence=group.evidence(),
        locations=group.issued_here() + ([loop] if loop is not None else []),
        details=group.details("queries", varies, cheap),
        correlation_id=group.first.correlation_id,
    )
