"""Conditions as functions of a row, in three-valued logic.

A compiled condition answers ``True``, ``False``, or ``None`` when a partial
row (a call still running, a message not yet received) does not know a field
it needs. ``and``/``or``/``not`` combine answers as Kleene logic does, so an
answer that is already ``False`` for a partial row stays ``False`` whatever
the late fields turn out to be: the evaluator drops such rows early. For a
complete row every field is known and the answer is ``True`` or ``False``.
"""

from __future__ import annotations

import bisect
import math
import operator
from collections.abc import Callable
from typing import Any

from elixirscope.query.esql.rows import UNKNOWN
from elixirscope.query.esql.values import compare, is_number, name_matcher, name_matches

__all__ = ["Test", "WindowSet", "all_of", "any_of", "field_test", "negation", "value_test"]

Test = Callable[[Any], "bool | None"]


def all_of(tests: list[Test]) -> Test:
    def test(row: Any) -> bool | None:
        unknown = False
        for t in tests:
            answer = t(row)
            if answer is False:
                return False
            if answer is None:
                unknown = True
        return None if unknown else True

    return tests[0] if len(tests) == 1 else test


def any_of(tests: list[Test]) -> Test:
    def test(row: Any) -> bool | None:
        unknown = False
        for t in tests:
            answer = t(row)
            if answer is True:
                return True
            if answer is None:
                unknown = True
        return None if unknown else False

    return tests[0] if len(tests) == 1 else test


def negation(inner: Test) -> Test:
    def test(row: Any) -> bool | None:
        answer = inner(row)
        return None if answer is None else not answer

    return test


def value_test(kind: str, op: str, literal: Any) -> Callable[[Any], bool]:
    """``value OP literal`` for a field of ``kind`` (see fields.py for the kinds)."""
    # a name matches whole or by its end: 'sell' matches __main__.sell, 'desk' shop/desk,
    # 'app.py:28' /srv/app/app.py:28 (a path as the tables show it, relative)
    if kind in ("function", "actor", "path") and isinstance(literal, str) and op in ("=", "!="):
        matches = name_matcher(literal, "." if kind == "function" else "/")
        if op == "=":
            return lambda v: isinstance(v, str) and matches(v)
        return lambda v: not (isinstance(v, str) and matches(v))
    if kind == "actors":
        if literal is None:
            return (lambda v: not v) if op == "=" else (lambda v: bool(v))
        if op in ("=", "!="):
            hit = lambda v: any(name_matches(literal, a, "/") for a in v or ())  # noqa: E731
            return hit if op == "=" else (lambda v: not hit(v))
        return lambda v: any(compare(op, a, literal) for a in v or ())
    if op in _NUMBER_OPS and is_number(literal) and not math.isnan(literal):
        # the rule of ``compare`` for a number, without its dispatch on every row:
        # only numbers compare (not bools); NaN compares false to everything
        against = _NUMBER_OPS[op]
        return lambda v: (
            isinstance(v, (int, float)) and v.__class__ is not bool and against(v, literal)
        )
    return lambda v: compare(op, v, literal)


_NUMBER_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def field_test(read: Callable[[Any], Any], check: Callable[[Any], bool]) -> Test:
    """A condition on one field: unknown while the field is."""

    def test(row: Any) -> bool | None:
        value = read(row)
        if value is UNKNOWN:
            return None
        return check(value)

    return test


class WindowSet:
    """Time windows around anchor rows (``within``), by key when ``on same ...``."""

    def __init__(self, span: int, side: str) -> None:
        self.span = span
        self.side = side
        self._merged: dict[Any, tuple[list[int], list[int]]] = {}
        self.anchors = 0
        self.low: int | None = None
        self.high: int | None = None

    def fill(self, anchors: list[tuple[int, tuple[Any, ...]]]) -> None:
        """Anchors as (time, keys); the windows are merged per key."""
        spans: dict[Any, list[tuple[int, int]]] = {}
        for ts, keys in anchors:
            lo = ts - self.span if self.side in ("before", "around") else ts
            hi = ts + self.span if self.side in ("after", "around") else ts
            for key in keys:
                spans.setdefault(key, []).append((lo, hi))
            self.low = lo if self.low is None else min(self.low, lo)
            self.high = hi if self.high is None else max(self.high, hi)
        self.anchors = len(anchors)
        for key, pairs in spans.items():
            pairs.sort()
            starts: list[int] = []
            ends: list[int] = []
            for lo, hi in pairs:
                if ends and lo <= ends[-1]:
                    ends[-1] = max(ends[-1], hi)
                else:
                    starts.append(lo)
                    ends.append(hi)
            self._merged[key] = (starts, ends)

    def holds(self, ts: Any, keys: tuple[Any, ...]) -> bool:
        if not isinstance(ts, int):
            return False
        for key in keys:
            found = self._merged.get(key)
            if found is None:
                continue
            starts, ends = found
            i = bisect.bisect_right(starts, ts) - 1
            if i >= 0 and ts <= ends[i]:
                return True
        return False
