"""The shape of a parsed ESQL query: plain dataclasses, each knowing where it was written.

``pos``/``length`` locate a node in the query text, so the planner's errors
point at the part they are about. Nothing here knows about fields or the
store; :mod:`~elixirscope.query.esql.planner` gives the names their meaning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Union

__all__ = [
    "Aggregate",
    "And",
    "Between",
    "Column",
    "Comparison",
    "Expr",
    "Field",
    "Find",
    "Inside",
    "IsNull",
    "Literal_",
    "Membership",
    "Not",
    "Or",
    "OrderKey",
    "Query",
    "Scope",
    "Select",
    "EventRef",
    "Trace",
    "TracePath",
    "Within",
]


@dataclass(frozen=True)
class Field:
    """A field, with a path into its value: ``args.item``, ``state.tasks[0].owner``."""

    name: str
    path: tuple[str | int, ...]
    pos: int
    length: int

    @property
    def text(self) -> str:
        out = self.name
        for step in self.path:
            out += f"[{step}]" if isinstance(step, int) else f".{step}"
        return out


@dataclass(frozen=True)
class Literal_:
    """A written value: ``kind`` is string, number, duration, ago (a duration before
    now), true, false or null."""

    kind: str
    value: Any
    pos: int
    length: int
    text: str


@dataclass(frozen=True)
class Comparison:
    field: Field
    op: str  # = != < <= > >=
    value: Literal_
    pos: int
    length: int


@dataclass(frozen=True)
class Membership:
    field: Field
    values: tuple[Literal_, ...]
    negated: bool
    pos: int
    length: int


@dataclass(frozen=True)
class Between:
    field: Field
    low: Literal_
    high: Literal_
    pos: int
    length: int


@dataclass(frozen=True)
class IsNull:
    field: Field
    negated: bool
    pos: int
    length: int


@dataclass(frozen=True)
class Inside:
    """Nested in a call of ``pattern``: at any depth, or ``directly`` (its parent)."""

    pattern: Literal_
    directly: bool
    pos: int
    length: int


@dataclass(frozen=True)
class Within:
    """``[field] within D before|after|around ANCHOR [on same chain|process|thread|actor]``."""

    field: Field
    span: Literal_
    side: Literal["before", "after", "around"]
    anchor: Select
    same: str | None
    pos: int
    length: int


@dataclass(frozen=True)
class Not:
    inner: Expr
    pos: int
    length: int


@dataclass(frozen=True)
class And:
    parts: tuple[Expr, ...]
    pos: int
    length: int


@dataclass(frozen=True)
class Or:
    parts: tuple[Expr, ...]
    pos: int
    length: int


Expr = Union[Comparison, Membership, Between, IsNull, Inside, Within, Not, And, Or]


@dataclass(frozen=True)
class Aggregate:
    """``count(*)``, ``p95(duration)``: ``field`` None for ``*``."""

    function: str
    field: Field | None
    pos: int
    length: int

    @property
    def text(self) -> str:
        return f"{self.function}({'*' if self.field is None else self.field.text})"


@dataclass(frozen=True)
class Column:
    item: Field | Aggregate
    alias: str | None
    pos: int
    length: int

    @property
    def name(self) -> str:
        return self.alias or self.item.text


@dataclass(frozen=True)
class OrderKey:
    """``order by`` one key: a column's name or alias, an aggregate, or a field."""

    name: str
    item: Field | Aggregate
    descending: bool
    pos: int
    length: int


@dataclass(frozen=True)
class Scope:
    """``in run 'ID'``, ``in run latest`` (``run`` None) or ``in all runs``."""

    run: str | None
    all_runs: bool
    pos: int
    length: int


@dataclass(frozen=True)
class Select:
    source: str
    source_pos: int
    columns: tuple[Column, ...] = ()
    of: Literal_ | None = None
    where: Expr | None = None
    group_by: tuple[Field, ...] = ()
    order_by: tuple[OrderKey, ...] = ()
    limit: int | None = None
    scope: Scope | None = None


@dataclass(frozen=True)
class Trace:
    """``trace 'CORRELATION'``: every event of one chain, nested."""

    correlation: Literal_
    where: Expr | None = None
    limit: int | None = None
    scope: Scope | None = None


@dataclass(frozen=True)
class EventRef:
    """One event named in ``trace from ... to ...``: its ``id`` (a number), its
    ``'producer:id'`` (a text), or a query in brackets that picks it (``select``)."""

    literal: Literal_ | None
    select: Select | None
    pos: int
    length: int


@dataclass(frozen=True)
class TracePath:
    """``trace from REF to REF``: the shortest causal path between two events."""

    start: EventRef
    end: EventRef
    limit: int | None = None
    scope: Scope | None = None


@dataclass(frozen=True)
class Find:
    """``find repeated calls of 'db.*' >= 5 under one parent``: the N+1 shape."""

    source: str
    source_pos: int
    of: Literal_ | None = None
    where: Expr | None = None
    at_least: int = 2
    per: Literal["parent", "chain"] = "parent"
    limit: int | None = None
    scope: Scope | None = None


Query = Union[Select, Trace, TracePath, Find]
