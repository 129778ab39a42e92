"""Aggregates over calls answered from columns (:mod:`~elixirscope.query.esql.callcolumns`).

The planner asks :func:`spec_of` whether a query can be answered here: an
aggregate over ``calls`` whose groups, aggregated fields and condition use
only fields the columns hold — ``function``, ``module``, ``pid``, ``node``,
``program``, ``producer``, ``status``, ``kind`` (few distinct values: a
condition on them is decided once per value, with the very tests the row path
uses) and ``duration``, ``time``, ``end`` (numbers: compared as whole arrays,
by the same rules as :func:`~elixirscope.query.esql.values.compare`) — under
``and``/``or``/``not``, with no time condition pushed down to the store (the
row path reads from that time on, which these columns do not imitate).

:func:`answer` gives the same rows as the row evaluator, groups in the same
order (that of each group's first call to end). Everything else — and a store
whose columns are not exact — is read as rows. ``explain["engine"]`` says which.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from elixirscope.query.esql import syntax as s
from elixirscope.query.percentile import nearest_rank_index

__all__ = ["Spec", "answer", "spec_of"]

TEXT_FIELDS = frozenset(
    {"function", "module", "pid", "node", "program", "producer", "status", "kind"}
)
NUMBER_FIELDS = frozenset({"duration", "time", "start", "end"})
INT64 = (-(2**63), 2**63 - 1)
QUANTILES = {"p50": 0.50, "p95": 0.95, "p99": 0.99}
LOOP_GROUPS = 32
"""Up to this many groups each is picked out by a comparison; more, by one sort."""


class _No(Exception):
    """The query needs something the columns do not hold."""


@dataclass
class Spec:
    group: list[str]
    columns: list[tuple[str, str | None]]  # ("group", field) or (aggregate, field or None)
    where: Any = None  # a tree of ("and"|"or", [...]), ("not", x), ("text"|"number", ...)
    fields: set[str] = field(default_factory=set)


def spec_of(planner: Any, q: s.Select, plan: Any) -> Spec | None:
    """What the columns must compute for ``q``, or None (``plan.explain`` says why)."""
    try:
        spec = _spec(planner, q, plan)
    except _No as why:
        plan.explain["engine"] = f"rows ({why})"
        return None
    plan.explain["engine"] = "columns"
    return spec


def _spec(planner: Any, q: s.Select, plan: Any) -> Spec:
    from elixirscope.query.esql.fields import ALIASES

    if plan.source.name != "calls" or not plan.aggregate:
        raise _No("only aggregates over calls are answered from columns")
    if plan.anchors or plan.empty:
        raise _No("`within` is read as rows")
    if "since" in plan.filters or "until" in plan.filters or plan.starts_until is not None:
        raise _No("a time range is read from the store's time index")
    spec = Spec([], [])

    def name_of(f: s.Field) -> str:
        if f.path:
            raise _No(f"{f.text} is a path into a value")
        name = ALIASES.get(f.name.lower(), f.name.lower())
        if name not in TEXT_FIELDS and name not in NUMBER_FIELDS:
            raise _No(f"the columns do not hold {name}")
        spec.fields.add(name)
        return name

    grouped = {}
    for g in q.group_by:
        name = name_of(g)
        if name not in TEXT_FIELDS:
            raise _No(f"group by {name} is read as rows")
        spec.group.append(name)
        grouped[g.text] = name
    for col in q.columns:
        item = col.item
        if isinstance(item, s.Aggregate):
            target = None if item.field is None else name_of(item.field)
            spec.columns.append((item.function, target))
        else:
            spec.columns.append(("group", grouped.get(item.text) or name_of(item)))
    source = plan.source
    parts = planner.conjuncts(q, source)
    if parts:
        spec.where = ("and", [_condition(planner, p, source, name_of) for p in parts])
    return spec


def _condition(planner: Any, e: s.Expr, source: Any, name_of: Callable[[s.Field], str]) -> Any:
    from elixirscope.query.esql.predicates import value_test

    if isinstance(e, (s.And, s.Or)):
        return (
            "and" if isinstance(e, s.And) else "or",
            [_condition(planner, p, source, name_of) for p in e.parts],
        )
    if isinstance(e, s.Not):
        return ("not", _condition(planner, e.inner, source, name_of))
    if not isinstance(e, (s.Comparison, s.Membership, s.Between, s.IsNull)):
        raise _No("nesting and windows are read as rows")
    name = name_of(e.field)
    fdef = planner.field_def(e.field, source)
    kind = fdef.kind
    negated = False
    if isinstance(e, s.IsNull):
        forms, combine, negated = [("=", None)], "any", e.negated
    elif isinstance(e, s.Comparison):
        forms, combine = [(e.op, planner.literal(e.value, fdef, e.field, e.op))], "all"
    elif isinstance(e, s.Membership):
        forms = [("=", planner.literal(v, fdef, e.field, "=")) for v in e.values]
        combine, negated = "any", e.negated
    else:
        forms = [
            (">=", planner.literal(e.low, fdef, e.field, ">=")),
            ("<=", planner.literal(e.high, fdef, e.field, "<=")),
        ]
        combine = "all"
    if name in NUMBER_FIELDS:
        return ("number", name, forms, combine, negated)
    tests = [value_test(kind, op, literal) for op, literal in forms]
    pick = any if combine == "any" else all

    def check(value: Any) -> bool:
        hit = pick(t(value) for t in tests)
        return not hit if negated else hit

    return ("text", name, check)


# ---------------------------------------------------------------- answering


def answer(
    plan: Any, store: Any, run_filters: dict[str, Any], check: Callable[[], None]
) -> list[tuple[Any, ...]] | None:
    """The aggregate's rows (before ``order by`` and ``limit``), or None when the store's
    columns cannot give them exactly (then ``plan.explain`` says why)."""
    import numpy as np

    from elixirscope.query.esql.callcolumns import call_columns

    if set(run_filters) - {"run"}:
        plan.explain["engine"] = "rows (a run scope the columns do not know)"
        return None
    table, how = call_columns(store, str(store.root), check)
    plan.explain["columns"] = how
    if not table.exact:
        plan.explain["engine"] = f"rows (the columns are not exact here: {table.why})"
        return None
    check()
    view = _View(table)
    spec: Spec = plan.columnar
    mask = None
    if "run" in run_filters:
        keep = np.array([o[4] == run_filters["run"] for o in table.origins] or [False])
        mask = keep[table["origin"]]
    if spec.where is not None:
        found = view.condition(spec.where)
        mask = found if mask is None else mask & found
    check()
    rows = None if mask is None else np.flatnonzero(mask)
    groups = view.groups(spec.group, rows)
    check()
    out = []
    for key, where in groups:
        out.append(tuple(view.column(c, key, spec.group, where) for c in spec.columns))
    if not groups and not spec.group:
        empty = np.zeros(0, dtype=np.int64)
        out.append(tuple(view.column(c, (), spec.group, empty) for c in spec.columns))
    return out


class _View:
    """The table's columns as the row path's fields read them."""

    def __init__(self, table: Any) -> None:
        import numpy as np

        self.np = np
        self.table = table
        self._values: dict[str, tuple[Any, list[Any]]] = {}

    def coded(self, name: str) -> tuple[Any, list[Any]]:
        """A text field as (code of each row, value of each code)."""
        np, t = self.np, self.table
        found = self._values.get(name)
        if found is not None:
            return found
        if name == "function":
            found = (t["function"], list(t.functions))
        elif name == "module":
            modules = [f.rpartition(".")[0] if f and "." in f else None for f in t.functions]
            distinct = sorted(set(modules), key=lambda m: (m is None, m or ""))
            code = {m: i for i, m in enumerate(distinct)}
            remap = np.array([code[m] for m in modules] or [0], dtype=np.int32)
            found = (remap[t["function"]], distinct)
        elif name == "status":
            from elixirscope.query.esql.callcolumns import STATUS

            found = (t["status"], list(STATUS))
        elif name == "kind":
            found = (np.zeros(len(t), dtype=np.int8), ["call"])
        else:
            at = {"node": 0, "pid": 1, "program": 2, "producer": 3}[name]
            values = [o[at] for o in t.origins]
            distinct = list(dict.fromkeys(values))
            code = {v: i for i, v in enumerate(distinct)}
            remap = np.array([code[v] for v in values] or [0], dtype=np.int32)
            found = (remap[t["origin"]], distinct)
        self._values[name] = found
        return found

    def number(self, name: str) -> tuple[Any, Any]:
        """A number field as (values, which rows have one)."""
        t = self.table
        if name in ("time", "start"):  # a call's time is its start
            return t["start"], None
        return t[name], t["status"] != 0

    def condition(self, node: Any) -> Any:
        np = self.np
        what = node[0]
        if what in ("and", "or"):
            parts = [self.condition(p) for p in node[1]]
            out = parts[0]
            for p in parts[1:]:
                out = (out & p) if what == "and" else (out | p)
            return out
        if what == "not":
            return ~self.condition(node[1])
        if what == "text":
            _w, name, check = node
            codes, values = self.coded(name)
            hits = np.array([bool(check(v)) for v in values] or [False], dtype=np.bool_)
            return hits[codes]
        _w, name, forms, combine, negated = node
        values, valid = self.number(name)
        masks = [_compare(np, op, values, valid, literal) for op, literal in forms]
        out = masks[0]
        for m in masks[1:]:
            out = (out | m) if combine == "any" else (out & m)
        return ~out if negated else out

    def groups(self, names: list[str], rows: Any) -> list[tuple[tuple[Any, ...], Any]]:
        """(key, rows of the group) for each group, in the order of each one's first row;
        ``rows`` None: every row (no index array is made for them)."""
        np = self.np
        n = len(self.table)
        if not names:
            if rows is None:
                rows = np.arange(n, dtype=np.int64)
            return [((), rows)] if len(rows) else []
        gid: Any = None
        tables = []
        for name in names:
            codes, values = self.coded(name)
            picked = codes if rows is None else codes[rows]
            gid = picked if gid is None else gid.astype(np.int64) * len(values) + picked
            tables.append(values)
        if len(gid) <= 4096 or int(gid.max()) > 4 * len(gid):
            present = np.unique(gid)
        else:
            present = np.flatnonzero(np.bincount(gid))
        found = []
        if len(present) <= LOOP_GROUPS:
            for g in present.tolist():
                hit = np.flatnonzero(gid == g)
                found.append((g, hit if rows is None else rows[hit]))
        else:
            order = np.argsort(gid, kind="stable")
            ordered = gid[order]
            starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
            ends = np.r_[starts[1:], len(ordered)]
            for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
                hit = order[a:b]
                found.append((int(ordered[a]), hit if rows is None else rows[hit]))
        found.sort(key=lambda item: int(item[1][0]))
        out = []
        for g, where in found:
            key = []
            for values in reversed(tables):
                g, code = divmod(g, len(values))
                key.append(values[code])
            out.append((tuple(reversed(key)), where))
        return out

    def column(
        self, col: tuple[str, str | None], key: tuple[Any, ...], group: list[str], rows: Any
    ) -> Any:
        function, name = col
        if function == "group":
            assert name is not None
            return key[group.index(name)] if name in group else self._first(name, rows)
        if name is None:  # count(*)
            return int(len(rows))
        if name in NUMBER_FIELDS:
            values, valid = self.number(name)
            picked = values[rows] if valid is None else values[rows[valid[rows]]]
            return _number_aggregate(self.np, function, picked)
        codes, values = self.coded(name)
        present = self.np.unique(codes[rows])
        if function == "count":
            nulls = {i for i, v in enumerate(values) if v is None}
            if not nulls:
                return int(len(rows))
            return int(sum(1 for c in codes[rows].tolist() if c not in nulls))
        from elixirscope.query.esql.evaluator import _Accumulator

        acc = _Accumulator(function)
        for code in present.tolist():
            acc.add(values[code])
        return acc.result()

    def _first(self, name: str, rows: Any) -> Any:
        if not len(rows):
            return None
        if name in NUMBER_FIELDS:
            values, valid = self.number(name)
            i = int(rows[0])
            return None if valid is not None and not valid[i] else int(values[i])
        codes, values = self.coded(name)
        return values[int(codes[int(rows[0])])]


def _number_aggregate(np: Any, function: str, values: Any) -> Any:
    n = len(values)
    if function == "count":
        return int(n)
    if not n:
        return None
    if function == "min":
        return int(values.min())
    if function == "max":
        return int(values.max())
    if function in ("sum", "avg"):
        low, high = int(values.min()), int(values.max())
        if max(abs(low), abs(high)) * n < 2**62:
            total = int(values.sum())
        else:
            total = sum(values.tolist())
        return total if function == "sum" else total / n
    k = nearest_rank_index(n, QUANTILES[function])
    return int(np.partition(values, k)[k])


def _compare(np: Any, op: str, values: Any, valid: Any, literal: Any) -> Any:
    """``compare(op, value, literal)`` for a whole column of whole numbers (``valid``:
    which rows have one; the others are null)."""
    if op == "!=":
        return ~_compare(np, "=", values, valid, literal)
    some = np.ones(len(values), dtype=np.bool_) if valid is None else valid
    if literal is None:
        return ~some if op == "=" else np.zeros(len(values), dtype=np.bool_)
    if isinstance(literal, bool) or not isinstance(literal, (int, float)):
        return np.zeros(len(values), dtype=np.bool_)
    if isinstance(literal, float):
        if math.isnan(literal):
            return np.zeros(len(values), dtype=np.bool_)
        if math.isinf(literal):
            below = literal > 0  # every number is below +inf, none below -inf
            hit = below if op in ("<", "<=") else (not below if op in (">", ">=") else False)
            return some.copy() if hit else np.zeros(len(values), dtype=np.bool_)
        if op == "=":
            if not literal.is_integer():
                return np.zeros(len(values), dtype=np.bool_)
            literal = int(literal)
        elif op in ("<", ">="):
            literal = math.ceil(literal)
        else:
            literal = math.floor(literal)
    if literal > INT64[1]:
        hit = op in ("<", "<=")
        return some.copy() if hit else np.zeros(len(values), dtype=np.bool_)
    if literal < INT64[0]:
        hit = op in (">", ">=")
        return some.copy() if hit else np.zeros(len(values), dtype=np.bool_)
    lit = np.int64(literal)
    if op == "=":
        found = values == lit
    elif op == "<":
        found = values < lit
    elif op == "<=":
        found = values <= lit
    elif op == ">":
        found = values > lit
    else:
        found = values >= lit
    return found & some
