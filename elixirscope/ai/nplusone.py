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

from elixirscope.ai.findings import Evidence, Finding, Location, shown_path
from elixirscope.ai.recording import Recording
from elixirscope.ai.settings import InsightSettings
from elixirscope.ai.source import loop_around, loop_calling
from elixirscope.ai.sql import literals, normalize, parameter_values
from elixirscope.contracts.trace import DatabaseQuery

__all__ = [
    "MAX_EVIDENCE",
    "detect_n_plus_one",
    "group_details",
    "loop_of",
    "short_statement",
    "varying",
]

_CATALOG = re.compile(r"\b(sqlite_master|sqlite_schema|pg_catalog|information_schema)\b", re.I)
"""The databases' own catalogs: queries of them look at the schema, not the program's rows."""

MAX_EVIDENCE = 20
"""Queries listed as evidence (the count says how many there were)."""


def detect_n_plus_one(recording: Recording, settings: InsightSettings) -> list[Finding]:
    groups: dict[tuple[Any, ...], list[Any]] = defaultdict(list)
    sockets = {
        (se.producer, se.event.parent_id)
        for se in recording.of("req")
        if se.event.protocol == "websocket"
    }  # a WebSocket connection's own call: its queries repeat as messages come (a poll)
    for se in recording.of("query"):
        ev: DatabaseQuery = se.event
        if ev.many or ev.error:
            continue
        request = recording.request_call(se.producer, ev.parent_id)
        if request is not None and (se.producer, request) in sockets:
            continue
        shape = normalize(ev.statement)
        if not shape.startswith(("SELECT", "WITH")):
            continue  # as Sentry's rule: reads (a unit of work's inserts are not N+1)
        if _CATALOG.search(shape):
            continue  # a schema's introspection (a migration asking of each table), not data
        parent = recording.unit_of(se)
        groups[(parent, shape, ev.file, ev.line)].append(se)
    made: list[tuple[Finding, Any, Location | None, list[Any]]] = []
    for (parent, shape, file, line), found in groups.items():
        total_ns = sum(se.event.duration_ns for se in found)
        if len(found) < settings.n_plus_one_min_queries:
            continue
        cheap = total_ns < settings.n_plus_one_min_total_ms * 1e6
        loop = loop_of(recording, found, file, line)
        finding = _finding(
            recording, parent, shape, file, line, found, total_ns, settings, cheap, loop
        )
        made.append((finding, parent, loop, found))
    _tell_loop_mates(made)
    return [finding for finding, *_ in made]


def _tell_loop_mates(made: list[tuple[Finding, Any, Location | None, list[Any]]]) -> None:
    """Statements one loop ran in turn (a Django loop following two foreign keys: a book,
    then its author, each row) are each a finding; each names the others, and does not say
    its queries ran one after another when the others' ran between them."""
    by_loop: dict[tuple[Any, str, int], list[tuple[Finding, list[Any]]]] = defaultdict(list)
    for finding, parent, loop, found in made:
        if loop is not None:
            by_loop[(parent, loop.file, loop.line)].append((finding, found))
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
    recording: Recording,
    parent: str,
    shape: str,
    file: str | None,
    line: int,
    found: list[Any],
    total_ns: int,
    settings: InsightSettings,
    cheap: bool,
    loop: Location | None,
) -> Finding:
    first = found[0]
    ev: DatabaseQuery = first.event
    locations = []
    if file:
        locations.append(Location(file, line, ev.caller, "issued here"))
    if loop is not None:
        locations.append(loop)
    varies = varying(found)
    n = len(found)
    ms = total_ns / 1e6
    where = f" at {shown_path(file)}:{line}" if file else ""
    loop_text = f" inside the loop at {loop}" if loop is not None else ""
    explanation = (
        f"The same query ran {n} times one after another{where}{loop_text}, "
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
    fix = (
        "Fetch the rows in one query before the loop: "
        + (
            f"`... WHERE {varies['column']} IN (...)` with every value at once, "
            if varies.get("column")
            else "one query with an IN (...) list or a JOIN, "
        )
        + "then look each row up in a dict inside the loop (with an ORM: eager loading — "
        "SQLAlchemy's selectinload, Django's select_related for a ForeignKey the loop follows, "
        "prefetch_related for a reverse or many-to-many relation)."
    )
    evidence = [Evidence(se.producer, se.event.id, se.ts, "query") for se in found[:MAX_EVIDENCE]]
    chain = ev.correlation_id
    return Finding(
        kind="n_plus_one",
        severity="low" if cheap else "high" if n >= 20 or ms >= 500 else "medium",
        title=f"N+1 queries: {n} x `{short_statement(shape)}`",
        weight=n,
        explanation=explanation,
        fix=fix,
        run=recording.run,
        key=f"{parent}\0{shape}\0{file}:{line}",
        evidence=evidence,
        locations=locations,
        details=group_details(shape, "queries", found, varies, parent, ms, cheap),
        correlation_id=chain,
    )


def group_details(
    shape: str,
    counted: str,
    found: list[Any],
    varies: dict[str, Any],
    parent: str,
    ms: float,
    cheap: bool,
) -> dict[str, Any]:
    """A finding's ``details`` of a group of like queries (N+1, row-by-row writes): its
    statement, how many (under ``counted``), their time, what varies, whether costly."""
    return {
        "statement": shape,
        counted: len(found),
        "total_ms": round(ms, 3),
        "system": found[0].event.system,
        "varying": varies.get("positions", []),
        "values": varies.get("values", []),
        "parent": parent,
        "costly": not cheap,
        "event_types": ["query"],
    }


def short_statement(shape: str, limit: int = 60) -> str:
    """A normalized statement as a finding's title shows it (at most ``limit`` characters)."""
    return shape if len(shape) <= limit else shape[: limit - 3] + "..."


def loop_of(recording: Recording, found: list[Any], file: str | None, line: int) -> Location | None:
    """The loop around the issuing line, else the loop calling the function that issued them."""
    if file:
        at = loop_around(file, line)
        if at is not None:
            return Location(file, at, found[0].event.caller, "the loop")
    first = found[0]
    callers = [recording.call(se.producer, se.event.parent_id) for se in found]
    if not callers or any(c is None for c in callers):
        return None
    helper = callers[0]
    if helper is None or len({c.id for c in callers if c is not None}) < 2:
        return None
    outer = recording.call(first.producer, helper.parent_id)
    if outer is None or not outer.file:
        return None
    at = loop_calling(outer.file, outer.line, helper.function)
    return None if at is None else Location(outer.file, at, outer.function, "the loop")


def varying(found: list[Any]) -> dict[str, Any]:
    """Which parameter (or literal) differs between the queries, with a few of its values."""
    literal_lists = [literals(se.event.statement) for se in found]
    param_lists = [parameter_values(se.event.parameters) for se in found]
    columns = _columns(found[0].event.statement)
    out: dict[str, Any] = {"positions": [], "values": []}
    if len({len(x) for x in literal_lists}) == 1 and literal_lists[0]:
        for i in range(len(literal_lists[0])):
            values = [x[i] for x in literal_lists]
            if len(set(values)) > 1:
                out["positions"].append(f"literal {i + 1}")
                out["values"].append(values[:5])
    if all(p is not None for p in param_lists) and len({len(p or ()) for p in param_lists}) == 1:
        for i in range(len(param_lists[0] or ())):
            values = [p[i] for p in param_lists if p is not None]
            if len(set(values)) > 1:
                out["positions"].append(f"parameter {i + 1}")
                out["values"].append(values[:5])
                if i < len(columns):
                    out.setdefault("column", columns[i])
    if not out["positions"]:
        if any(se.event.parameters and "<redacted>" in se.event.parameters for se in found):
            out["text"] = (
                "Its parameters were recorded redacted (integrations.db_parameters = "
                '"redacted"); record with "values" to see which one varies.'
            )
        else:
            out["text"] = "Nothing recorded differs between them: the very same query ran again."
        return out
    parts = []
    for position, values in zip(out["positions"], out["values"], strict=True):
        column = ""
        if position.startswith("parameter"):
            index = int(position.split()[1]) - 1
            if index < len(columns):
                column = f" ({columns[index]})"
        more = ", ..." if len(found) > len(values) else ""
        parts.append(f"{position}{column} varies ({', '.join(values)}{more})")
    out["text"] = "Between them, " + "; ".join(parts) + "."
    return out


def _columns(statement: str) -> list[str]:
    """The column each placeholder is compared with (``id = ?`` -> ``id``), in order."""
    import re

    return re.findall(
        r"([\w.]+)\s*(?:=|<|>|<=|>=|IN|LIKE)\s*\(?\s*(?:\?|%s|:\w+|\$\d+)", statement, re.IGNORECASE
    )
