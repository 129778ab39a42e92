"""Row-by-row writes: the same INSERT, UPDATE or DELETE run again and again, one row each.

The writing side of the N+1 pattern, which Sentry's rule leaves out (it looks at reads):
at least ``row_writes_min_statements`` writes of the same normalized SQL from the same
line under one parent (a web request, a correlation chain, else one thread of one
process: ``query_groups``) — each its own ``execute``, where one
``executemany`` (recorded ``many``: never counted) or one bulk statement would send
them all — taking at least ``row_writes_min_total_ms`` together. Fewer milliseconds
than that is the pattern, not yet its cost (an in-memory SQLite writes a row in
microseconds; a networked database pays a round trip a row): a ``low`` finding that
says so. The finding names the loop (around the issuing line, or calling the helper
that issues it) and what varies between the statements, as an N+1's does; writes with
no loop of the program's around them are none (an ORM's flush of ``add_all``, issued
from the one line that commits: the program already handed the rows over at once).
"""

from __future__ import annotations

from typing import Any

from elixirscope.ai.findings import Finding, Location
from elixirscope.ai.query_groups import QueryGroup, loop_of, query_groups, short_statement, varying
from elixirscope.ai.recording import Recording
from elixirscope.ai.settings import InsightSettings

__all__ = ["detect_row_writes"]

WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")
"""Statements that write rows (an upsert is an INSERT ... ON CONFLICT)."""


def detect_row_writes(recording: Recording, settings: InsightSettings) -> list[Finding]:
    def writes(se: Any, shape: str) -> bool:
        return shape.startswith(WRITES)

    made = []
    for group in query_groups(recording, writes, settings.row_writes_min_statements):
        loop = loop_of(recording, group)
        if loop is None:
            continue  # one line of the program's, no loop of its own: a library's flush
        made.append(_finding(recording, group, settings, loop))
    return made


def _finding(
    recording: Recording, group: QueryGroup, settings: InsightSettings, loop: Location
) -> Finding:
    shape, n, ms = group.shape, len(group.found), group.ms
    verb = shape.split(None, 1)[0]
    cheap = ms < settings.row_writes_min_total_ms
    varies = varying(group.found)
    explanation = (
        f"The same {verb} ran {n} times, one row each,{group.where()} inside the loop at "
        f"{loop}, taking {ms:.1f} ms together: `{shape}`. {varies['text']} Each statement "
        "is a round trip to the database (and, outside a transaction, a commit of its own), "
        "so the time grows with the number of rows the loop walks."
        + (
            f" Here they took less than the {settings.row_writes_min_total_ms:g} ms that makes "
            "it costly (insights.row_writes_min_total_ms), but each new row adds a round trip."
            if cheap
            else ""
        )
    )
    if verb in ("INSERT", "REPLACE"):
        fix = (
            "Send the rows in one call: collect them in the loop, then "
            "`cursor.executemany(sql, rows)` (sqlite3, psycopg: `executemany`), with "
            "SQLAlchemy `session.execute(insert(Table), rows)` or `session.add_all(objects)` "
            "(one batched INSERT at flush), with Django `Model.objects.bulk_create(objects)`."
        )
    else:
        column = group.key_column(varies)
        fix = (
            f"Write them in one statement: `{verb} ... WHERE "
            + (f"{column} IN (...)`" if column else "key IN (...)`")
            + " with every key at once when each row gets the same change, else "
            "`executemany(sql, rows)` (SQLAlchemy: `session.execute(update(Table), rows)` "
            "with each row's key; Django: `bulk_update`)."
        )
    return Finding(
        kind="row_by_row_writes",
        severity="low" if cheap else "high" if ms >= 500 else "medium",
        title=f"row-by-row writes: {n} x `{short_statement(shape)}`",
        weight=n,
        explanation=explanation,
        fix=fix,
        run=recording.run,
        key=group.key(),
        evidence=group.evidence(),
        locations=[*group.issued_here(), loop],
        details=group.details("statements", varies, cheap),
        correlation_id=group.first.correlation_id,
    )
