"""Row-by-row writes: the same INSERT, UPDATE or DELETE run again and again, one row each.

The writing side of the N+1 pattern, which Sentry's rule leaves out (it looks at reads):
at least ``row_writes_min_statements`` writes of the same normalized SQL from the same
line under one parent (a web request, a correlation chain, else one thread of one
process; as ``nplusone`` groups them) — each its own ``execute``, where one
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

from collections import defaultdict
from typing import Any

from elixirscope.ai.findings import Evidence, Finding, Location, shown_path
from elixirscope.ai.nplusone import (
    MAX_EVIDENCE,
    group_details,
    loop_of,
    short_statement,
    varying,
)
from elixirscope.ai.recording import Recording
from elixirscope.ai.settings import InsightSettings
from elixirscope.ai.sql import normalize
from elixirscope.contracts.trace import DatabaseQuery

__all__ = ["detect_row_writes"]

WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")
"""Statements that write rows (an upsert is an INSERT ... ON CONFLICT)."""


def detect_row_writes(recording: Recording, settings: InsightSettings) -> list[Finding]:
    groups: dict[tuple[Any, ...], list[Any]] = defaultdict(list)
    for se in recording.of("query"):
        ev: DatabaseQuery = se.event
        if ev.many or ev.error:
            continue  # executemany is the fix; a failed write is the error's business
        shape = normalize(ev.statement)
        if not shape.startswith(WRITES):
            continue
        groups[(recording.unit_of(se), shape, ev.file, ev.line)].append(se)
    made = []
    for (parent, shape, file, line), found in groups.items():
        if len(found) < settings.row_writes_min_statements:
            continue
        loop = loop_of(recording, found, file, line)
        if loop is None:
            continue  # one line of the program's, no loop of its own: a library's flush
        total_ns = sum(se.event.duration_ns for se in found)
        cheap = total_ns < settings.row_writes_min_total_ms * 1e6
        made.append(
            _finding(recording, parent, shape, file, line, found, total_ns, settings, cheap, loop)
        )
    return made


def _finding(
    recording: Recording,
    parent: str,
    shape: str,
    file: str | None,
    line: int,
    found: list[Any],
    total_ns: int,
    settings: InsightSettings,
    cheap: bool,
    loop: Location,
) -> Finding:
    ev: DatabaseQuery = found[0].event
    verb = shape.split(None, 1)[0]
    n, ms = len(found), total_ns / 1e6
    locations = [Location(file, line, ev.caller, "issued here")] if file else []
    locations.append(loop)
    varies = varying(found)
    where = f" at {shown_path(file)}:{line}" if file else ""
    loop_text = f" inside the loop at {loop}"
    explanation = (
        f"The same {verb} ran {n} times, one row each,{where}{loop_text}, taking "
        f"{ms:.1f} ms together: `{shape}`. {varies['text']} Each statement is a round trip "
        "to the database (and, outside a transaction, a commit of its own), so the time "
        "grows with the number of rows the loop walks."
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
        column = varies.get("column")
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
        key=f"{parent}\0{shape}\0{file}:{line}",
        evidence=[
            Evidence(se.producer, se.event.id, se.ts, "query") for se in found[:MAX_EVIDENCE]
        ],
        locations=locations,
        details=group_details(shape, "statements", found, varies, parent, ms, cheap),
        correlation_id=ev.correlation_id,
    )
