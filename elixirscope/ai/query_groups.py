"""Like queries: one normalized statement issued again and again from one line.

What the N+1 and the row-by-row writes detectors both look for, each in its own kind
of statement: :func:`query_groups` puts a run's queries together by the unit they ran
under (a web request, a correlation chain, else one thread of one process), their
normalized SQL and the line that issued them; a :class:`QueryGroup` answers what a
finding about it says — the loop that repeated it (:func:`loop_of`), what varies
between its queries (:func:`varying`), its evidence and its details.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from elixirscope.ai.findings import Evidence, Location, shown_path
from elixirscope.ai.recording import Recording
from elixirscope.ai.source import loop_around, loop_calling
from elixirscope.ai.sql import literals, normalize, parameter_values
from elixirscope.contracts.trace import DatabaseQuery

__all__ = [
    "MAX_EVIDENCE",
    "QueryGroup",
    "loop_calling_helper",
    "loop_of",
    "loop_repeating",
    "n_plus_one_severity",
    "query_groups",
    "short_statement",
    "varying",
]

MAX_EVIDENCE = 20
"""Queries listed as evidence (the count says how many there were)."""


@dataclass
class QueryGroup:
    """The queries of one ``shape`` issued from ``file``:``line`` under ``parent``."""

    parent: str
    shape: str
    file: str | None
    line: int
    found: list[Any]  # their stored events, in the order they ran

    @property
    def first(self) -> DatabaseQuery:
        return self.found[0].event

    @property
    def ms(self) -> float:
        return sum(se.event.duration_ns for se in self.found) / 1e6

    def issued_here(self) -> list[Location]:
        """The issuing line as a finding's location (none when no line was recorded)."""
        ev = self.first
        return [Location(self.file, self.line, ev.caller, "issued here")] if self.file else []

    def where(self) -> str:
        """`` at path:line`` for a finding's text, or nothing."""
        return f" at {shown_path(self.file)}:{self.line}" if self.file else ""

    def key(self) -> str:
        """The finding's key: the same group in another run is the same finding."""
        return f"{self.parent}\0{self.shape}\0{self.file}:{self.line}"

    def key_column(self, varies: dict[str, Any]) -> str | None:
        """The column a fix's ``IN (...)`` lists the values of: the one whose parameter
        varies, else the statement's only placeholder column (its parameters redacted)."""
        if varies.get("column"):
            return str(varies["column"])
        columns = _columns(self.first.statement)
        return columns[0] if len(columns) == 1 else None

    def evidence(self) -> list[Evidence]:
        return [
            Evidence(se.producer, se.event.id, se.ts, "query") for se in self.found[:MAX_EVIDENCE]
        ]

    def details(self, counted: str, varies: dict[str, Any], cheap: bool) -> dict[str, Any]:
        """A finding's ``details``: its statement, how many (under ``counted``), their
        time, what varies, whether costly."""
        return {
            "statement": self.shape,
            counted: len(self.found),
            "total_ms": round(self.ms, 3),
            "system": self.first.system,
            "varying": varies.get("positions", []),
            "values": varies.get("values", []),
            "parent": self.parent,
            "costly": not cheap,
            "event_types": ["query"],
        }


def query_groups(
    recording: Recording, wanted: Callable[[Any, str], bool], at_least: int
) -> list[QueryGroup]:
    """The groups of at least ``at_least`` queries whose stored event and normalized
    statement ``wanted`` keeps; ``executemany`` and failed queries are never counted (the
    one is the fix, the other the error's business)."""
    groups: dict[tuple[Any, ...], list[Any]] = defaultdict(list)
    for se in recording.of("query"):
        ev: DatabaseQuery = se.event
        if ev.many or ev.error:
            continue
        shape = normalize(ev.statement)
        if wanted(se, shape):
            groups[(recording.unit_of(se), shape, ev.file, ev.line)].append(se)
    return [
        QueryGroup(parent, shape, file, line, found)
        for (parent, shape, file, line), found in groups.items()
        if len(found) >= at_least
    ]


def n_plus_one_severity(n: int, ms: float, cheap: bool) -> str:
    """An N+1's severity (queries or HTTP calls): ``low`` under the cost threshold (the
    pattern, not yet the cost), ``high`` from 20 round trips or 500 ms, else ``medium``."""
    return "low" if cheap else "high" if n >= 20 or ms >= 500 else "medium"


def short_statement(shape: str, limit: int = 60) -> str:
    """A normalized statement as a finding's title shows it (at most ``limit`` characters)."""
    return shape if len(shape) <= limit else shape[: limit - 3] + "..."


def loop_of(recording: Recording, group: QueryGroup) -> Location | None:
    """The loop that repeated a group's queries (:func:`loop_repeating`)."""
    return loop_repeating(recording, group.found, group.file, group.line)


def loop_repeating(
    recording: Recording, found: list[Any], file: str | None, line: int
) -> Location | None:
    """The loop around the line that issued the events ``found`` (queries, HTTP calls:
    events with a ``caller``), else the loop calling the function that issued them. When
    each ran in a call of its own of that function (a recorded helper called once a row),
    the loop calling it comes first: a comprehension on the issuing line (``sum(x.qty
    for x in order.lines)``) then walks the rows one query fetched."""
    callers = [recording.call(se.producer, se.event.parent_id) for se in found]
    ids = {c.id for c in callers if c is not None}
    once_a_call = None not in callers and len(ids) == len(callers)
    inside = None
    if file:
        at = loop_around(file, line)
        inside = None if at is None else Location(file, at, found[0].event.caller, "the loop")
    if inside is not None and not once_a_call:
        return inside
    return loop_calling_helper(recording, found[0].producer, callers) or inside


def loop_calling_helper(recording: Recording, producer: str, callers: list[Any]) -> Location | None:
    """The loop that called the recorded function under which the events ran, when they
    ran under two calls of it or more (``callers``: the call each ran under)."""
    helper = callers[0] if callers else None
    if helper is None or None in callers or len({c.id for c in callers}) < 2:
        return None
    outer = recording.call(producer, helper.parent_id)
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


_PLACEHOLDER = r"(?:\?|%s|:\w+|\$\d+)"
_COLUMN_THEN_PLACEHOLDER = r"([\w.]+)\s*(?:=|<|>|<=|>=|IN|LIKE)\s*\(?\s*" + _PLACEHOLDER
_PLACEHOLDER_THEN_COLUMN = _PLACEHOLDER + r"\s*(?:=|<|>|<=|>=)\s*([A-Za-z_][\w.]*)"
_PLACEHOLDER_COLUMN = re.compile(
    f"{_COLUMN_THEN_PLACEHOLDER}|{_PLACEHOLDER_THEN_COLUMN}", re.IGNORECASE
)
"""``column = ?``, or ``? = column`` as SQLAlchemy writes a relationship's lazy load."""


def _columns(statement: str) -> list[str]:
    """The column each placeholder is compared with (``id = ?`` or ``? = id`` -> ``id``),
    in order."""
    return [left or right for left, right in _PLACEHOLDER_COLUMN.findall(statement)]
