"""A parsed query -> a :class:`Plan`: fields checked, literals typed, work split.

The planner gives every name its meaning (:mod:`~elixirscope.query.esql.fields`),
rejects what cannot hold (an unknown field, a path into a number, a duration
compared with a name) with a positioned error, compiles the condition
(:mod:`~elixirscope.query.esql.predicates`), and splits the work:

- *pushed down*: the top-level ``and`` conditions the event store's indexes
  answer before any chunk is decoded — event types, a function glob, one
  actor, one correlation chain, a time range, a process — become
  ``EventStore.stream`` filters;
- *in Python*: the whole condition, checked again on every row (a pushed-down
  filter is a superset, never the answer).

A filter is pushed only when it keeps everything the rows need: nesting
(``depth``, ``parent``, ``inside``) needs every call of a process, and an
actor's state needs all its state events from a keyframe on, so those queries
push down only process-wide filters. :attr:`Plan.explain` says what went where.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from elixirscope.query.esql import syntax as s
from elixirscope.query.esql.errors import EsqlError, closest
from elixirscope.query.esql.fields import (
    ALIASES,
    DEFAULT_COLUMNS,
    FIELDS,
    PATH_KINDS,
    FieldDef,
    fields_of,
    read_path,
)
from elixirscope.query.esql.predicates import (
    Test,
    WindowSet,
    all_of,
    any_of,
    field_test,
    negation,
    value_test,
)
from elixirscope.query.esql.rows import UNKNOWN
from elixirscope.query.esql.values import jsonable, name_matcher, name_matches
from elixirscope.query.esql.vocabulary import SOURCES, Source

__all__ = ["Anchor", "OutColumn", "Plan", "plan_query"]

_GLOB = frozenset("*?[")
MAX_INDEXED_ACTORS = 10_000
INT64 = (-(2**63), 2**63 - 1)


@dataclass
class OutColumn:
    """One column of the answer: its name, how it shows, and how a row gives it."""

    name: str
    kind: str
    read: Callable[[Any], Any] | None  # None for an aggregate
    aggregate: str | None = None
    source: Callable[[Any], Any] | None = None  # what an aggregate reads of each row


@dataclass
class Anchor:
    """The rows a ``within`` window is around: planned, run first."""

    plan: Plan
    windows: WindowSet
    keys: Callable[[Any], tuple[Any, ...]]  # ``on same ...``: what must be equal
    pushable: bool = False  # the windows bound the main read's time range


@dataclass
class FindSpec:
    at_least: int
    per: str


@dataclass
class PathEnd:
    """One end of ``trace from ... to ...``: an event by ``id`` (and ``producer``, when
    written) or the rows of ``plan``; ``pos``/``length`` locate it for errors."""

    text: str
    pos: int
    length: int
    id: int | None = None
    producer: str | None = None
    plan: Plan | None = None


@dataclass
class PathSpec:
    start: PathEnd
    end: PathEnd
    text: str  # the query, for positioned errors


@dataclass
class Plan:
    source: Source
    filters: dict[str, Any]
    test: Test | None
    columns: list[OutColumn]
    aggregate: bool = False
    group: list[Callable[[Any], Any]] = field(default_factory=list)
    order: list[tuple[Callable[[Any], Any] | int, bool]] = field(default_factory=list)
    limit: int | None = None
    follow: set[str] = field(default_factory=set)
    anchors: list[Anchor] = field(default_factory=list)
    empty: str | None = None  # why nothing can match, known before reading
    hint: str = ""  # what may explain an answer with no rows (a function never recorded)
    refs: bool = False  # each row ends with its event, PRODUCER:ID (None for aggregates)
    find: FindSpec | None = None
    trace: bool = False
    path: PathSpec | None = None
    partial_ok: bool = False  # the test can judge partial rows (calls, messages)
    row_kinds: frozenset[str] = frozenset()  # the event types that make rows
    explain: dict[str, Any] = field(default_factory=dict)
    time_pushable: bool = True
    starts_until: int | None = None  # calls, messages: none that starts later can match
    columnar: Any = None  # what the call columns compute instead (columnar.Spec), if they can
    uses_now: bool = False  # a time relative to now (or a written time): not cached


def plan_query(
    query: s.Query,
    text: str,
    *,
    store: Any = None,
    run_filters: dict[str, Any] | None = None,
    now_ns: int | None = None,
    correlation: Callable[[str], str] | None = None,
) -> Plan:
    """The plan of a parsed query. ``store`` (an open EventStore, or None) resolves
    actor names for pushdown; ``correlation`` resolves a chain prefix (``trace``)."""
    planner = _Planner(text, store, dict(run_filters or {}), now_ns, correlation)
    if isinstance(query, s.Trace):
        plan = planner.trace(query)
    elif isinstance(query, s.TracePath):
        plan = planner.trace_path(query)
    elif isinstance(query, s.Find):
        plan = planner.find(query)
    else:
        plan = planner.select(query)
    plan.uses_now = planner.uses_now
    if planner.hints and not plan.hint:
        plan.hint = "; ".join(planner.hints)
    return plan


_MEANT: dict[tuple[str, str], tuple[str, str]] = {
    ("status", "requests"): (
        "code",
        "a request's HTTP status is `code` (requests where code = 500)",
    ),
    ("status", "http"): (
        "code",
        "an HTTP attempt's status is `code` (http where code >= 500; null when no response came)",
    ),
    ("status", "websockets"): (
        "code",
        "a WebSocket close's code is `code`; its connection's HTTP status is its request's"
        " (requests where path = '/ws/*')",
    ),
}
"""Fields people name by another vocabulary's word (HTTP's `status`), where a source
calls them otherwise: the error names the field. Not synonyms: `status` of calls and
messages is their outcome (ok, error, ...), and one word must mean one thing."""


class _Planner:
    def __init__(
        self,
        text: str,
        store: Any,
        run_filters: dict[str, Any],
        now_ns: int | None,
        correlation: Callable[[str], str] | None,
    ) -> None:
        import time

        self.text = text
        self.store = store
        self.run_filters = run_filters
        self.now_ns = time.time_ns() if now_ns is None else now_ns
        self.uses_now = False
        self.correlation = correlation
        self.hints: list[str] = []  # what may explain an answer with no rows
        self.anchor_of: dict[int, Anchor] = {}

    def error(self, message: str, node: Any, suggestion: str | None = None) -> EsqlError:
        return EsqlError(message, self.text, node.pos, node.length, suggestion)

    # ------------------------------------------------------------ queries

    def select(self, q: s.Select, anchor: bool = False) -> Plan:
        source = SOURCES[q.source]
        conjuncts = self.conjuncts(q, source)
        follow: set[str] = set()
        anchors: list[Anchor] = []
        test = self.compile_where(q.where, source, follow, anchors, of=self.of_condition(q, source))
        plan = Plan(source=source, filters={}, test=test, columns=[], follow=follow)
        plan.anchors = anchors
        plan.partial_ok = source.assembled
        if not anchor:
            self.columns(q, plan)
        plan.limit = q.limit
        self.push_down(plan, conjuncts)
        if not anchor and plan.aggregate:
            from elixirscope.query.esql.columnar import spec_of

            plan.columnar = spec_of(self, q, plan)
        return plan

    def trace(self, q: s.Trace) -> Plan:
        if not str(q.correlation.value).strip():
            raise self.error("expected a correlation id (or its first characters)", q.correlation)
        chain = str(q.correlation.value).strip()
        if self.correlation is not None:
            try:
                chain = self.correlation(chain)
            except ValueError as exc:
                raise self.error(str(exc), q.correlation) from None
        source = SOURCES["events"]
        follow: set[str] = {"calls"}
        anchors: list[Anchor] = []
        test = self.compile_where(q.where, source, follow, anchors)
        plan = Plan(source=source, filters={}, test=test, columns=[], follow=follow)
        plan.anchors = anchors
        plan.trace = True
        plan.limit = q.limit
        plan.columns = [
            self.out_field("time", s.Field("time", (), 0, 1), source, follow),
            self.out_field("kind", s.Field("kind", (), 0, 1), source, follow),
            OutColumn("detail", "text", _tree_detail),
        ]
        plan.filters = {"correlation_id": chain, **self.run_filters}
        plan.row_kinds = frozenset(source.kinds)
        plan.explain = {
            "pushed_down": _shown_filters(plan.filters),
            "in_python": "the condition" if q.where is not None else "nothing",
            "note": "depth counts the calls of this chain only",
        }
        return plan

    def trace_path(self, q: s.TracePath) -> Plan:
        source = SOURCES["events"]
        follow: set[str] = set()
        plan = Plan(source=source, filters=dict(self.run_filters), test=None, columns=[])
        plan.path = PathSpec(self.path_end(q.start), self.path_end(q.end), self.text)
        plan.limit = q.limit
        plan.columns = [
            self.out_field("time", s.Field("time", (), 0, 1), source, follow),
            self.out_field("kind", s.Field("kind", (), 0, 1), source, follow),
            self.out_field("id", s.Field("id", (), 0, 1), source, follow),
            OutColumn("edge", "text", lambda row: row.edge),
            self.out_field("detail", s.Field("detail", (), 0, 1), source, follow),
        ]
        plan.row_kinds = frozenset(source.kinds)
        plan.explain = {
            "pushed_down": _shown_filters(plan.filters),
            "in_python": "the causal graph of the run's events, searched breadth first",
        }
        return plan

    def path_end(self, ref: s.EventRef) -> PathEnd:
        shown = self.text[ref.pos : ref.pos + ref.length]
        if ref.select is not None:
            if ref.select.group_by or ref.select.order_by:
                raise self.error(
                    "a query that picks an event takes no `group by` or `order by`:"
                    " it picks the first in recorded order with `limit 1`",
                    ref,
                )
            return PathEnd(shown, ref.pos, ref.length, plan=self.select(ref.select, anchor=True))
        assert ref.literal is not None
        value = ref.literal.value
        if ref.literal.kind == "number":
            return PathEnd(shown, ref.pos, ref.length, id=int(value))
        producer, _, number = str(value).strip().rpartition(":")
        if not producer or not number.strip().isdigit():
            raise self.error(
                f"expected an event as 'producer:id' (e.g. 'host:4242:ab12:17', as the"
                f" `producer` and `id` fields show them), got {value!r}",
                ref.literal,
            )
        return PathEnd(shown, ref.pos, ref.length, id=int(number), producer=producer)

    def find(self, q: s.Find) -> Plan:
        if q.source != "calls":
            raise self.error(
                f"find repeated reads calls, not {q.source}",
                _At(q.source_pos, len(q.source)),
                "calls",
            )
        select = s.Select(source="calls", source_pos=q.source_pos, of=q.of, where=q.where)
        follow: set[str] = set()
        source = SOURCES["calls"]
        anchors: list[Anchor] = []
        test = self.compile_where(
            q.where, source, follow, anchors, of=self.of_condition(select, source)
        )
        plan = Plan(source=source, filters={}, test=test, columns=[], follow=follow)
        plan.anchors = anchors
        plan.partial_ok = True
        plan.find = FindSpec(q.at_least, q.per)
        plan.limit = q.limit
        plan.columns = [
            OutColumn(
                "parent" if q.per == "parent" else "chain",
                "function" if q.per == "parent" else "text",
                None,
            ),
            OutColumn("function", "function", None),
            OutColumn("calls", "int", None),
            OutColumn("distinct_args", "int", None),
            OutColumn("first", "time", None),
        ]
        self.push_down(plan, self.conjuncts(select, source))
        return plan

    # ------------------------------------------------------------ conditions

    def of_condition(self, q: s.Select, source: Source) -> s.Expr | None:
        if q.of is None:
            return None
        if source.of is None:
            raise self.error(
                f"`{q.source} of ...` is not defined: say which field, e.g. "
                f"{q.source} where function = {q.of.text!r} (or actor = ...)",
                q.of,
            )
        field_ = s.Field(source.of, (), q.of.pos, q.of.length)
        return s.Comparison(field_, "=", q.of, q.of.pos, q.of.length)

    def conjuncts(self, q: s.Select, source: Source) -> list[s.Expr]:
        out: list[s.Expr] = []
        of = self.of_condition(q, source)
        if of is not None:
            out.append(of)
        if isinstance(q.where, s.And):
            out.extend(q.where.parts)
        elif q.where is not None:
            out.append(q.where)
        return out

    def compile_where(
        self,
        where: s.Expr | None,
        source: Source,
        follow: set[str],
        anchors: list[Anchor],
        of: s.Expr | None = None,
    ) -> Test | None:
        parts = [p for p in (of, where) if p is not None]
        if not parts:
            return None
        return all_of([self.compile(p, source, follow, anchors) for p in parts])

    def compile(self, e: s.Expr, source: Source, follow: set[str], anchors: list[Anchor]) -> Test:
        if isinstance(e, s.And):
            return all_of([self.compile(p, source, follow, anchors) for p in e.parts])
        if isinstance(e, s.Or):
            return any_of([self.compile(p, source, follow, anchors) for p in e.parts])
        if isinstance(e, s.Not):
            return negation(self.compile(e.inner, source, follow, anchors))
        if isinstance(e, s.Inside):
            return self.inside(e, follow)
        if isinstance(e, s.Within):
            return self.within(e, source, follow, anchors)
        assert isinstance(e, (s.Comparison, s.Membership, s.Between, s.IsNull))
        fdef, read = self.reader(e.field, source, follow)
        kind = _compared_kind(fdef, e.field)
        if isinstance(e, s.IsNull):
            null = value_test(kind, "=", None)
            return field_test(read, (lambda v: not null(v)) if e.negated else null)
        if isinstance(e, s.Comparison):
            literal = self.literal(e.value, fdef, e.field, e.op)
            if kind == "value" and isinstance(literal, str) and _NUMBER.fullmatch(literal):
                self.hints.append(
                    f"{e.field.text} {e.op} '{literal}' compares with the text '{literal}';"
                    f" a recorded number is compared with {literal} (no quotes)"
                )
            return field_test(read, value_test(kind, e.op, literal))
        if isinstance(e, s.Membership):
            checks = [value_test(kind, "=", self.literal(v, fdef, e.field, "=")) for v in e.values]
            hit = lambda v: any(c(v) for c in checks)  # noqa: E731
            return field_test(read, (lambda v: not hit(v)) if e.negated else hit)
        low = value_test(kind, ">=", self.literal(e.low, fdef, e.field, ">="))
        high = value_test(kind, "<=", self.literal(e.high, fdef, e.field, "<="))
        return field_test(read, lambda v: low(v) and high(v))

    def inside(self, e: s.Inside, follow: set[str]) -> Test:
        follow.add("calls")
        matches = name_matcher(str(e.pattern.value), ".")
        if e.directly:

            def directly(row: Any) -> bool | None:
                parent = row.ctx.entry_of(row.se.producer, row.ev.parent_id)
                return parent is not None and matches(parent.function)

            return directly

        def test(row: Any) -> bool | None:
            return row.ctx.inside(row.se.producer, row.ev.parent_id, matches)

        return test

    def within(self, e: s.Within, source: Source, follow: set[str], anchors: list[Anchor]) -> Test:
        fdef, read = self.reader(e.field, source, follow)
        if fdef.kind != "time" or e.field.path:
            raise self.error(
                f"`within` takes a time field ({', '.join(_time_fields(source))}), not {e.field.text}",
                e.field,
            )
        if e.anchor.columns:
            raise self.error("a `within` anchor is rows (a source and a condition), not columns", e)
        sub = self.select(e.anchor, anchor=True)
        windows = WindowSet(int(e.span.value), e.side)
        if e.same == "thread":
            follow.add("threads")
            sub.follow.add("threads")
        keys = _same_keys(e.same)
        anchor = Anchor(sub, windows, keys)
        self.anchor_of[id(e)] = anchor
        anchors.append(anchor)

        def test(row: Any) -> bool | None:
            ts = read(row)
            if ts is UNKNOWN:
                return None
            return windows.holds(ts, keys(row))

        test.within_anchor = anchor  # type: ignore[attr-defined]
        return test

    # ------------------------------------------------------------ fields and literals

    def field_def(self, f: s.Field, source: Source) -> FieldDef:
        name = ALIASES.get(f.name.lower(), f.name.lower())
        fdef = FIELDS.get(name)
        known = fields_of(source.name)
        if fdef is None or source.name not in fdef.sources:
            candidates = known + [a for a, n in ALIASES.items() if n in known]
            suggestion = closest(f.name, candidates)
            where_else = (
                ""
                if fdef is None
                else f" ({name} is a field of {', '.join(sorted(fdef.sources - {'events'}))})"
            )
            meant = _MEANT.get((name, source.name))
            if meant is not None:  # a word of another vocabulary: say which field it is here
                where_else, suggestion = f": {meant[1]}", meant[0]
            raise EsqlError(
                f"unknown field {f.name!r} for {source.name}{where_else}",
                self.text,
                f.pos,
                len(f.name),
                suggestion,
                hint=f"{source.name} have: {', '.join(known)}",
            )
        if f.path and fdef.kind not in PATH_KINDS:
            raise self.error(
                f"{fdef.name} is {_kind_words(fdef.kind)}: it has no parts to follow "
                f"({f.text}); paths go into args, return, message, value, state and data",
                f,
            )
        return fdef

    def reader(
        self, f: s.Field, source: Source, follow: set[str]
    ) -> tuple[FieldDef, Callable[[Any], Any]]:
        fdef = self.field_def(f, source)
        follow.update(fdef.needs)
        if fdef.name == "args" and source.name == "exceptions":
            follow.add("calls")  # the failing call's entry, while it is open
        if fdef.name in ("file", "location") and source.name in ("yields", "resumes", "events"):
            follow.add("calls")  # a yield's file is its call's, open while it is suspended
        if fdef.name in ("line", "location", "step") and source.name in ("resumes", "events"):
            follow.add("yields")  # a resume's are the yield's it resumed from
        if fdef.name in ("path", "route") and source.name in ("websockets", "events"):
            follow.add("connections")  # a WebSocket step's are its connection's
        get, kind, path = fdef.get, fdef.kind, f.path
        if not path:
            if kind == "args":
                return fdef, lambda row: _args_text(get(row))
            if kind == "state":
                return fdef, lambda row: _plain_state(get(row))
            if kind == "actors":
                return fdef, lambda row: get(row) or None
            return fdef, get

        def read(row: Any) -> Any:
            value = get(row)
            if value is UNKNOWN:
                return UNKNOWN
            return read_path(kind, value, path)

        return fdef, read

    def known_value(self, lit: s.Literal_, fdef: FieldDef, f: s.Field) -> None:
        """A text compared with a field of few values must match one of them (a glob may
        match several): `step = 'awiat'` is a mistake, not a question with no answer."""
        from elixirscope.query.esql.values import glob

        text = str(lit.value)
        if not any(glob(text, v) for v in fdef.values):
            shown = ", ".join(f"'{v}'" for v in fdef.values)
            raise self.error(
                f"{f.text} is one of {shown}: '{text}' is none of them",
                lit,
                closest(text, fdef.values),
            )

    def literal(self, lit: s.Literal_, fdef: FieldDef, f: s.Field, op: str) -> Any:
        kind = _compared_kind(fdef, f)
        if lit.kind == "null":
            if op not in ("=", "!="):
                raise self.error("null can only be compared with = or != (or `is null`)", lit)
            return None
        if kind == "time":
            return self.time_literal(lit, f)
        if kind == "duration":
            if lit.kind == "number" and lit.value != 0:
                raise self.error(
                    f"{f.text} is a duration: give {lit.text} its unit (850ns, 12us, 5ms, 2s); "
                    f"a bare number would be nanoseconds",
                    lit,
                    f"{lit.text}ms",
                )
            if lit.kind in ("duration", "number"):
                return lit.value
            raise self.error(
                f"{f.text} is a duration: compare it with a duration like 5ms or 2s", lit
            )
        if lit.kind in ("duration", "ago"):
            raise self.error(f"{lit.text} is a duration, and {f.text} is {_kind_words(kind)}", lit)
        if kind in ("text", "path", "function", "actor", "actors", "args", "state", "data"):
            if fdef.values and not f.path and lit.kind == "string" and op in ("=", "!="):
                self.known_value(lit, fdef, f)
            if lit.kind != "string":
                example = f"'{fdef.values[0]}'" if fdef.values else "'shop*'"
                raise self.error(
                    f"{f.text} is {_kind_words(kind)}: compare it with a quoted text "
                    f"(a glob: * any run of characters, ? one), e.g. {f.text} = {example}",
                    lit,
                )
            return lit.value
        if kind == "int":
            if lit.kind != "number":
                raise self.error(f"{f.text} is a whole number: compare it with a number", lit)
            return lit.value
        return lit.value  # value: any of text, number, true, false

    def time_literal(self, lit: s.Literal_, f: s.Field) -> int:
        if lit.kind == "number":
            return (
                int(lit.value)
                if lit.value == lit.value and abs(lit.value) < 2**63
                else _clamp(lit.value)
            )
        if lit.kind in ("ago", "string"):
            self.uses_now = True  # a written time may be relative ('10m'): taken as so
        if lit.kind == "ago":
            return self.now_ns - int(lit.value)
        if lit.kind == "string":
            from elixirscope.query.reading import parse_time

            try:
                return parse_time(str(lit.value), field=f.text, now_ns=self.now_ns)
            except ValueError as exc:
                raise self.error(str(exc), lit) from None
        raise self.error(
            f"{f.text} is a time: compare it with '2024-05-01T12:00:00', '10m' (ago), "
            "5m ago, or nanoseconds",
            lit,
        )

    # ------------------------------------------------------------ columns

    def columns(self, q: s.Select, plan: Plan) -> None:
        source = plan.source
        follow = plan.follow
        has_aggregate = any(isinstance(c.item, s.Aggregate) for c in q.columns)
        plan.aggregate = has_aggregate or bool(q.group_by)
        if not q.columns:
            if q.group_by:
                raise self.error(
                    "group by needs columns: e.g. count(*), p95(duration) from calls group by function",
                    q.group_by[0],
                )
            for name in DEFAULT_COLUMNS[source.name]:
                plan.columns.append(self.out_field(name, s.Field(name, (), 0, 1), source, follow))
        else:
            names: set[str] = set()
            for col in q.columns:
                if col.name in names:
                    raise self.error(
                        f"two columns are named {col.name!r}; rename one with `as`", col
                    )
                names.add(col.name)
                if isinstance(col.item, s.Aggregate):
                    plan.columns.append(self.out_aggregate(col.name, col.item, source, follow))
                else:
                    plan.columns.append(self.out_field(col.name, col.item, source, follow))
        grouped = [g.text for g in q.group_by]
        for g in q.group_by:
            _fdef, read = self.reader(g, source, follow)
            plan.group.append(_hashable_reader(read))
        if plan.aggregate:
            for col, out in zip(q.columns, plan.columns, strict=True):
                if (
                    out.aggregate is None
                    and isinstance(col.item, s.Field)
                    and col.item.text not in grouped
                ):
                    raise self.error(
                        f"{col.item.text} is neither grouped nor aggregated: add it to "
                        f"`group by`, or aggregate it (count, min, max, ...)",
                        col,
                    )
        for key in q.order_by:
            plan.order.append((self.order_key(key, plan, q), key.descending))
        if plan.order and not plan.aggregate:  # ties keep the order rows start in
            plan.order.append((FIELDS["time"].get, False))

    def out_field(self, name: str, f: s.Field, source: Source, follow: set[str]) -> OutColumn:
        fdef, read = self.reader(f, source, follow)
        kind = _compared_kind(fdef, f)
        if kind in ("value", "data") or (kind == "state"):
            return OutColumn(name, "value", lambda row: jsonable(_known(read(row))))
        if kind == "args":
            return OutColumn(name, "args", lambda row: _known(fdef.get(row)))
        if kind == "actors":
            return OutColumn(name, "text", lambda row: ", ".join(_known(read(row)) or ()) or None)
        return OutColumn(name, kind, lambda row: _known(read(row)))

    def out_aggregate(
        self, name: str, agg: s.Aggregate, source: Source, follow: set[str]
    ) -> OutColumn:
        if agg.field is None:
            if agg.function != "count":
                raise self.error(
                    f"{agg.function}(*) is not defined: give a field, e.g. {agg.function}(duration)",
                    agg,
                )
            return OutColumn(name, "int", None, "count", None)
        fdef, read = self.reader(agg.field, source, follow)
        kind = _compared_kind(fdef, agg.field)
        if agg.function in ("sum", "avg", "p50", "p95", "p99") and kind in (
            "text",
            "path",
            "function",
            "actor",
            "actors",
            "args",
        ):
            raise self.error(
                f"{agg.function} needs numbers; {agg.field.text} is {_kind_words(kind)} "
                f"(count, min and max take it)",
                agg,
            )
        if agg.function == "count":
            shown = "int"
        elif kind in ("time", "duration"):
            shown = "duration" if agg.function == "sum" and kind == "duration" else kind
            if agg.function == "sum" and kind == "time":
                raise self.error("sum of times is not a time: sum durations instead", agg)
        elif kind == "int":
            shown = "number" if agg.function == "avg" else "int"
        elif kind in ("text", "path", "function", "actor"):
            shown = kind
        else:
            shown = "value"
        return OutColumn(name, shown, None, agg.function, _hashable_or_plain(read, kind))

    def order_key(self, key: s.OrderKey, plan: Plan, q: s.Select) -> Callable[[Any], Any] | int:
        names = [c.name for c in plan.columns]
        if key.name in names:
            return names.index(key.name)
        if isinstance(key.item, s.Aggregate):
            for i, col in enumerate(plan.columns):
                if col.aggregate and q.columns and q.columns[i].item == key.item:
                    return i
            texts = [c.item.text for c in q.columns]
            if key.item.text in texts:
                return texts.index(key.item.text)
            raise self.error(
                f"order by {key.name}: aggregate it in the columns first",
                key,
                closest(key.name, names),
            )
        shorthand = [i for i, c in enumerate(plan.columns) if c.aggregate == key.name.lower()]
        if len(shorthand) == 1 and isinstance(key.item, s.Field) and not key.item.path:
            return shorthand[0]
        if plan.aggregate:
            raise self.error(
                f"order by {key.name}: an aggregate query orders by its columns ({', '.join(names)})",
                key,
                closest(key.name, names),
            )
        assert isinstance(key.item, s.Field)
        out = self.out_field(key.name, key.item, plan.source, plan.follow)
        assert out.read is not None
        return out.read

    # ------------------------------------------------------------ pushdown

    def push_down(self, plan: Plan, conjuncts: list[s.Expr]) -> None:
        source = plan.source
        calls_context = "calls" in plan.follow
        states = "states" in plan.follow
        steps = "yields" in plan.follow  # a resume's yield may be before the time asked
        whole_process = calls_context or states or steps
        filters: dict[str, Any] = {"type": list(source.kinds), **self.run_filters}
        pushed: list[str] = []
        since, until = INT64[0] - 1, INT64[1] + 1
        time_ok = not whole_process
        plan.time_pushable = time_ok
        for e in conjuncts:
            if isinstance(e, (s.Comparison, s.Membership)) and e.field.path == ():
                name = ALIASES.get(e.field.name.lower(), e.field.name.lower())
                strings = _strings(e)
                if name == "kind" and strings is not None and source.name == "events":
                    kinds = [k for k in filters["type"] if k in strings]
                    if not kinds:
                        plan.empty = f"no event type is {' or '.join(strings)}"
                    filters["type"] = kinds or filters["type"]
                    pushed.append(_text(self.text, e))
                elif name == "function" and _exact_or_glob(strings) and not whole_process:
                    if "function" not in filters:
                        pattern = strings[0]  # type: ignore[index]
                        filters["function"] = pattern if pattern.startswith("*") else "*" + pattern
                        pushed.append(_text(self.text, e))
                        self.check_function(plan, pattern)
                elif (
                    name == "actor"
                    and _single(strings)
                    and not calls_context
                    and source.name != "messages"
                ):
                    self.push_actor(plan, filters, strings[0], pushed, e)  # type: ignore[index]
                elif name == "chain" and _single(strings) and not whole_process:
                    if not set(strings[0]) & _GLOB and "correlation_id" not in filters:  # type: ignore[index]
                        filters["correlation_id"] = strings[0]  # type: ignore[index]
                        pushed.append(_text(self.text, e))
                elif (
                    name in ("pid", "node", "producer")
                    and isinstance(e, s.Comparison)
                    and e.op == "="
                ):
                    value = e.value.value
                    if name == "pid" and isinstance(value, int) and not isinstance(value, bool):
                        if INT64[0] <= value <= INT64[1]:
                            filters["pid"] = value
                            pushed.append(_text(self.text, e))
                        else:
                            plan.empty = f"no process has pid {value}"
                    elif name != "pid" and isinstance(value, str) and not set(value) & _GLOB:
                        filters[name] = value
                        pushed.append(_text(self.text, e))
            if isinstance(e, s.Within) and time_ok and _is_time(e.field):
                self.anchor_of[id(e)].pushable = True
            if time_ok and isinstance(e, (s.Comparison, s.Between)) and _is_time(e.field):
                lo, hi = self.time_bounds(e)
                if lo is not None or hi is not None:
                    since = max(since, lo if lo is not None else since)
                    until = min(until, hi if hi is not None else until)
                    pushed.append(_text(self.text, e))
        self.set_time(plan, filters, since, until)
        plan.row_kinds = frozenset(filters["type"])
        if calls_context:
            filters["type"] = sorted(plan.row_kinds | {"call", "return", "exception"})
        if steps:  # and the ends that close a call at its yield
            filters["type"] = sorted({*filters["type"], "yield", "return", "exception"})
        if states and "state" not in filters["type"]:
            # `state` of another event is its actor's state then: every change is followed
            filters["type"] = sorted({*filters["type"], "state"})
        if states and source.name == "calls":  # and the receives that begin handlers
            filters["type"] = sorted({*filters["type"], "receive"})
        if set(filters["type"]) >= set(SOURCES["events"].kinds):
            del filters["type"]  # every type: the index would select every chunk
        plan.filters = filters
        plan.explain = {
            "source": source.name,
            "pushed_down": _shown_filters(filters),
            "pushed_conditions": pushed,
            "in_python": "the whole condition" if plan.test is not None else "nothing",
            "follows": sorted(plan.follow),
        }

    def set_time(self, plan: Plan, filters: dict[str, Any], since: int, until: int) -> None:
        if since > until:
            plan.empty = "the time conditions leave no time"
            return
        if plan.source.assembled:
            if until <= INT64[1]:
                plan.starts_until = until
            until = INT64[1] + 1  # a call's (a message's) end comes after its start
        if since >= INT64[0]:
            filters["since"] = min(since, INT64[1])
        if until <= INT64[1]:
            filters["until"] = max(until, INT64[0])

    def time_bounds(self, e: s.Comparison | s.Between) -> tuple[int | None, int | None]:
        if isinstance(e, s.Between):
            if e.low.kind == "null" or e.high.kind == "null":
                return None, None
            return self.time_literal(e.low, e.field), self.time_literal(e.high, e.field)
        if e.value.kind == "null":
            return None, None
        t = self.time_literal(e.value, e.field)
        return {
            ">=": (t, None),
            ">": (t + 1, None),
            "<=": (None, t),
            "<": (None, t - 1),
            "=": (t, t),
        }.get(e.op, (None, None))

    def check_function(self, plan: Plan, pattern: str) -> None:
        """A function no recorded event names (``calls of 'chekout'``): an answer with no
        rows says so with the names closest to it (an aggregate still answers its row)."""
        if self.store is None or "*" in pattern or "?" in pattern:
            return
        names = self.store.indexed_values("function", limit=MAX_INDEXED_ACTORS)
        if len(names) >= MAX_INDEXED_ACTORS or any(name_matches(pattern, n, ".") for n in names):
            return
        import difflib

        tails = {n.rpartition(".")[2]: n for n in names}
        close = difflib.get_close_matches(pattern.rpartition(".")[2], list(tails), n=3, cutoff=0.6)
        plan.hint = f"no recorded function is {pattern!r}" + (
            f" (closest: {', '.join(tails[c] for c in close)})" if close else ""
        )

    def push_actor(
        self, plan: Plan, filters: dict[str, Any], pattern: str, pushed: list[str], e: s.Expr
    ) -> None:
        if self.store is None or "actor" in filters:
            return
        names = self.store.indexed_values("actor", limit=MAX_INDEXED_ACTORS)
        if len(names) >= MAX_INDEXED_ACTORS:
            return
        found = [n for n in names if name_matches(pattern, n, "/")]
        if not found:
            plan.empty = f"no recorded actor is {pattern!r}"
        elif len(found) == 1:
            filters["actor"] = found[0]
            pushed.append(_text(self.text, e))


# ---------------------------------------------------------------- helpers


class _At:
    def __init__(self, pos: int, length: int) -> None:
        self.pos, self.length = pos, length


def _known(value: Any) -> Any:
    return None if value is UNKNOWN else value


def _compared_kind(fdef: FieldDef, f: s.Field) -> str:
    """How a field (with its path) compares: a path into a value gives a value."""
    if f.path and fdef.kind in PATH_KINDS:
        return "value"
    return fdef.kind


def _kind_words(kind: str) -> str:
    return {
        "text": "text",
        "path": "a file path",
        "function": "a function name",
        "actor": "an actor name",
        "actors": "actor names",
        "int": "a whole number",
        "time": "a time",
        "duration": "a duration",
        "value": "a recorded value",
        "args": "the arguments",
        "state": "a state",
        "data": "data",
    }.get(kind, kind)


def _time_fields(source: Source) -> list[str]:
    return [n for n in fields_of(source.name) if FIELDS[n].kind == "time"]


def _is_time(f: s.Field) -> bool:
    return not f.path and ALIASES.get(f.name.lower(), f.name.lower()) == "time"


_NUMBER = re.compile(r"-?\d+(\.\d+)?")
"""A quoted literal that reads as a number: compared with a value, it is text."""


def _strings(e: s.Comparison | s.Membership) -> list[str] | None:
    if isinstance(e, s.Comparison):
        if e.op != "=" or e.value.kind != "string":
            return None
        return [str(e.value.value)]
    if e.negated or any(v.kind != "string" for v in e.values):
        return None
    return [str(v.value) for v in e.values]


def _single(strings: list[str] | None) -> bool:
    return strings is not None and len(strings) == 1


def _exact_or_glob(strings: list[str] | None) -> bool:
    return _single(strings)


def _text(query: str, e: Any) -> str:
    return query[e.pos : e.pos + e.length]


def _shown_filters(filters: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in filters.items() if v is not None}


def _args_text(args: Any) -> Any:
    if args is UNKNOWN or args is None:
        return args
    return ", ".join(f"{k}={v}" for k, v in args.items())


def _plain_state(node: Any) -> Any:
    if node is UNKNOWN or node is None:
        return node
    from elixirscope.state.nodes import to_plain

    return to_plain(node)


def _hashable(value: Any) -> Any:
    try:
        hash(value)
        return value
    except TypeError:
        return repr(value)


def _hashable_reader(read: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda row: _hashable(_known(read(row)))


def _hashable_or_plain(read: Callable[[Any], Any], kind: str) -> Callable[[Any], Any]:
    if kind == "actors":
        return lambda row: ", ".join(_known(read(row)) or ()) or None
    return lambda row: _known(read(row))


def _clamp(value: float) -> int:
    if value != value:  # nan
        return 0
    return INT64[1] + 1 if value > 0 else INT64[0] - 1


def _same_keys(same: str | None) -> Callable[[Any], tuple[Any, ...]]:
    if same is None:
        return lambda row: (None,)
    if same == "chain":
        return lambda row: (row.ev.correlation_id,)
    if same == "process":
        return lambda row: (row.se.producer,)
    if same == "thread":
        return lambda row: ((row.se.producer, row.ev.thread),)
    from elixirscope.query.esql.fields import FIELDS as _F

    actors = _F["actor"].get
    return lambda row: tuple(_known(actors(row)) or ())


def _tree_detail(row: Any) -> str:
    depth = len(row.ctx.ancestors(row.se.producer, row.ev.parent_id))
    from elixirscope.query.esql.fields import FIELDS as _F

    return "  " * depth + _F["detail"].get(row)
