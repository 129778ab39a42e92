"""Recorded values as ESQL compares them: decoded from their text, never evaluated.

Arguments, returns and messages are recorded as bounded, redacted ``repr``
text (``elixirscope.capture.values``). :func:`decode` reads such a text back
into a value when it is a literal — numbers, strings, lists, tuples, dicts,
sets, ``True``/``False``/``None`` — and an object shown as ``Name(field=...)``
into a :class:`Fields` mapping of its fields, using only :mod:`ast` parsing
(nothing of the program runs). A part that is no literal stays its recorded
text (:class:`Text`) while the rest is read: a Django model's
``_state=<django.db.models.base.ModelState>`` field does not hide its ``id``;
a ``datetime.datetime(...)`` is its ISO text (:class:`Moment`); a text cut at
the recording's limit gives the fields before the cut
(:mod:`~elixirscope.query.esql.reprtext`). A whole text that is none of these
(``<redacted>``, ``<Foo object at 0x…>``, a cut number) is a :class:`Text`.

Comparison rules (:func:`compare`), the same everywhere:

- ``null`` equals only a missing value (or a recorded ``None``);
- a quoted text with ``=``/``!=`` is a glob (``*``, ``?``, ``[abc]``) over a
  text value, or over the recorded text of any other value;
  ``<``/``>`` order texts alphabetically;
- a number compares with numbers only (``True`` is not a number here);
- ``true``/``false`` equal only booleans;
- a comparison that cannot hold (a number against a text) is false, and
  ``!=`` is its negation (so ``return != 10`` holds where nothing was recorded).
"""

from __future__ import annotations

import ast
import datetime
import fnmatch
import math
import re
import warnings
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from elixirscope.query.esql.render import KeyTexts, NoResponse
from elixirscope.query.esql.reprtext import CUT_NAME, as_python, restore

__all__ = [
    "Fields",
    "Moment",
    "Text",
    "compare",
    "decode",
    "glob",
    "jsonable",
    "name_matches",
    "step_into",
]

MAX_DECODE_CHARS = 20_000
"""Longer texts are not decoded (recorded values are far shorter; see capture.values)."""


class Text(str):
    """Recorded text that is not a literal: compared and shown as it is (its ``repr`` too,
    so a list or an object holding one shows as it was recorded)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return str.__str__(self)


class Moment(Text):
    """A date or time recorded as ``datetime.datetime(...)`` (``date``, ``time``): its ISO
    text, which orders as the times do when they share an offset
    (``args.loan.created > '2026-12-06T18:30'``); inside a bigger value it shows as recorded."""

    recorded: str

    def __new__(cls, iso: str, recorded: str) -> Moment:
        moment = super().__new__(cls, iso)
        moment.recorded = recorded
        return moment

    def __repr__(self) -> str:
        return self.recorded

    def __reduce__(self) -> tuple[Any, ...]:
        return (Moment, (str.__str__(self), self.recorded))


class Fields(dict):
    """An object recorded as ``Name(field=value, ...)``: its fields by name; ``cut`` when
    the recording left some out (``Name(a=1, ...)``, a text cut at its limit)."""

    __slots__ = ("cls", "cut")

    def __init__(self, cls: str, fields: dict[str, Any], cut: bool = False) -> None:
        super().__init__(fields)
        self.cls = cls
        self.cut = cut

    def __repr__(self) -> str:
        parts = [f"{k}={v!r}" for k, v in self.items()] + (["..."] if self.cut else [])
        return f"{self.cls}({', '.join(parts)})"


class _NotLiteral(Exception):
    pass


_BRACKETS = re.compile(r"[(\[{]")


@lru_cache(maxsize=4096)
def decode(text: str | None) -> Any:
    """The value a recorded text shows, or the text itself as :class:`Text`: read as
    Python when it is Python, else as :func:`~elixirscope.query.esql.reprtext.as_python`
    rewrites it (its ``<...>`` parts set aside, a cut closed)."""
    if text is None:
        return None
    if len(text) > MAX_DECODE_CHARS:
        return Text(text)
    source = text.strip()
    tree = _parsed(source)
    if tree is not None:
        return _Reader(source, ()).whole(tree, text)
    if _BRACKETS.search(source) is None:  # no object or container to read parts of
        return Text(text)
    for reading in as_python(source):
        tree = _parsed(reading.source)
        if tree is not None:
            return _Reader(reading.source, reading.originals).whole(tree, text)
    return Text(text)


def _parsed(source: str) -> ast.AST | None:
    try:
        if "\\" not in source:
            return ast.parse(source, mode="eval").body
        with warnings.catch_warnings():  # `'\>'` is no escape: its warning is not the reader's
            warnings.simplefilter("ignore")
            return ast.parse(source, mode="eval").body
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None


_MOMENTS: dict[str, Callable[..., Any]] = {
    "datetime.datetime": datetime.datetime,
    "datetime.date": datetime.date,
    "datetime.time": datetime.time,
}


class _Reader:
    """Reads one parsed text: literals as values, objects as :class:`Fields`, and a part
    that is neither (inside a container or an object) as its recorded :class:`Text`."""

    __slots__ = ("originals", "source")

    def __init__(self, source: str, originals: tuple[str, ...]) -> None:
        self.source = source
        self.originals = originals  # what the placeholders of reprtext stand for

    def whole(self, node: ast.AST, text: str) -> Any:
        try:
            return self.value(node)
        except (_NotLiteral, RecursionError, MemoryError):
            return Text(text)

    def part(self, node: ast.AST) -> Any:
        try:
            return self.value(node)
        except _NotLiteral:
            return self.text(node)

    def value(self, node: ast.AST) -> Any:
        kind = type(node)
        if kind is ast.Constant:
            return node.value  # type: ignore[attr-defined]
        if kind is ast.List:
            return [self.part(e) for e in node.elts]  # type: ignore[attr-defined]
        if kind is ast.Tuple:
            return tuple([self.part(e) for e in node.elts])  # type: ignore[attr-defined]
        if kind is ast.Set:
            return _Unhashable.guard(set, [self.part(e) for e in node.elts])  # type: ignore[attr-defined]
        if kind is ast.Dict:
            return self.dict(node)  # type: ignore[arg-type]
        if kind is ast.Call:
            return self.call(node)  # type: ignore[arg-type]
        if kind is ast.UnaryOp and isinstance(node.op, (ast.USub, ast.UAdd)):  # type: ignore[attr-defined]
            inner = self.value(node.operand)  # type: ignore[attr-defined]
            if isinstance(inner, bool) or not isinstance(inner, (int, float, complex)):
                raise _NotLiteral
            return -inner if isinstance(node.op, ast.USub) else inner  # type: ignore[attr-defined]
        if kind is ast.BinOp and isinstance(node.op, (ast.Add, ast.Sub)):  # type: ignore[attr-defined]
            left, right = self.value(node.left), self.value(node.right)  # type: ignore[attr-defined]
            if isinstance(left, (int, float)) and isinstance(right, complex):  # 1+2j
                return left + right if isinstance(node.op, ast.Add) else left - right  # type: ignore[attr-defined]
        raise _NotLiteral

    def dict(self, node: ast.Dict) -> dict[Any, Any]:
        items = []
        for key, value in zip(node.keys, node.values, strict=True):
            if key is None:  # `**x`: only the mark of items left out
                if _is_cut(value):
                    continue
                raise _NotLiteral
            items.append((self.part(key), self.part(value)))
        return _Unhashable.guard(dict, items)

    def call(self, node: ast.Call) -> Any:
        name = _dotted(node.func)
        if name in _MOMENTS:
            return self.moment(node, name)
        cut = False
        if node.args:  # positional: no object of fields, but `Name(...)` (cut by depth)
            if len(node.args) > 1 or node.keywords or not _is_ellipsis(node.args[0]):
                raise _NotLiteral
            cut = True
        fields = {}
        for keyword in node.keywords:
            if keyword.arg is not None:
                fields[keyword.arg] = self.part(keyword.value)
            elif _is_cut(keyword.value):
                cut = True
            else:
                raise _NotLiteral
        if name == "set" and not fields and not cut:
            return set()
        return Fields(name, fields, cut)

    def moment(self, node: ast.Call, name: str) -> Moment:
        """``datetime.datetime(2026, 12, 6, 18, 30, tzinfo=datetime.timezone.utc)`` as a
        :class:`Moment`, built by the stdlib type from whole numbers only."""
        numbers = [_whole(a) for a in node.args]
        options: dict[str, Any] = {}
        for keyword in node.keywords:
            if keyword.arg == "tzinfo":
                options["tzinfo"] = _timezone(keyword.value)
            elif keyword.arg == "fold":
                options["fold"] = _whole(keyword.value)
            else:
                raise _NotLiteral
        try:
            when = _MOMENTS[name](*numbers, **options)
        except (TypeError, ValueError, OverflowError):
            raise _NotLiteral from None
        return Moment(when.isoformat(), str.__str__(self.text(node)))

    def text(self, node: ast.AST) -> Text:
        """The part of the recorded text ``node`` was read from, as written."""
        source = self.source
        if "\n" in source:
            part = ast.get_source_segment(source, node) or ""
        elif source.isascii():
            part = source[node.col_offset : node.end_col_offset]  # type: ignore[attr-defined]
        else:  # offsets count UTF-8 bytes
            part = source.encode()[node.col_offset : node.end_col_offset].decode()  # type: ignore[attr-defined]
        if "__esql_" in part:
            part = restore(part, self.originals)
        return Text(part)


def _is_cut(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and node.id == CUT_NAME


def _is_ellipsis(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value is Ellipsis


def _whole(node: ast.AST) -> int:
    """A whole number written as one (a sign allowed), else not a literal here."""
    negative = isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub)
    if isinstance(node, ast.UnaryOp) and negative:
        node = node.operand
    if not isinstance(node, ast.Constant) or type(node.value) is not int:
        raise _NotLiteral
    return -node.value if negative else node.value


def _timezone(node: ast.AST) -> datetime.tzinfo:
    """``datetime.timezone.utc`` or ``datetime.timezone(datetime.timedelta(...)[, 'NAME'])``;
    any other zone (``zoneinfo.ZoneInfo(...)``) leaves the time as its text."""
    if isinstance(node, ast.Attribute) and _dotted(node) == "datetime.timezone.utc":
        return datetime.timezone.utc
    if not isinstance(node, ast.Call) or _dotted(node.func) != "datetime.timezone":
        raise _NotLiteral
    if node.keywords or not 1 <= len(node.args) <= 2:
        raise _NotLiteral
    offset, named = node.args[0], node.args[1:]
    if not isinstance(offset, ast.Call) or _dotted(offset.func) != "datetime.timedelta":
        raise _NotLiteral
    if offset.args and offset.keywords or len(offset.args) > 3:  # `timedelta(0)` or by name
        raise _NotLiteral
    by_name = {kw.arg: _whole(kw.value) for kw in offset.keywords}
    if not set(by_name) <= {"days", "seconds", "microseconds"}:
        raise _NotLiteral
    name = named[0] if named else None
    if name is not None and not (isinstance(name, ast.Constant) and isinstance(name.value, str)):
        raise _NotLiteral
    try:
        delta = datetime.timedelta(*[_whole(a) for a in offset.args], **by_name)  # type: ignore[arg-type]
        if name is None:
            return datetime.timezone(delta)
        return datetime.timezone(delta, str(name.value))
    except (TypeError, ValueError, OverflowError):
        raise _NotLiteral from None


class _Unhashable:
    @staticmethod
    def guard(make: Callable[[Any], Any], items: Any) -> Any:
        try:
            return make(items)
        except TypeError:  # an unhashable key or member (a list in a set): not a literal
            raise _NotLiteral from None


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    raise _NotLiteral


_MISSING = object()


def step_into(value: Any, step: str | int) -> Any:
    """One step of a path into a decoded value (a key, a field, an index); None if absent."""
    if isinstance(value, dict):
        found = value.get(step, _MISSING)
        if found is _MISSING and isinstance(step, int):
            found = value.get(str(step), _MISSING)
        return None if found is _MISSING else found
    if isinstance(value, (list, tuple)) and isinstance(step, int):
        return value[step] if -len(value) <= step < len(value) else None
    return None


@lru_cache(maxsize=1024)
def _glob_regex(pattern: str) -> Callable[[str], Any]:
    return re.compile(fnmatch.translate(pattern), re.S).match


def glob(pattern: str, text: str) -> bool:
    """``text`` matches the fnmatch glob ``pattern`` (case-sensitive)."""
    return _glob_regex(pattern)(text) is not None


def name_matches(pattern: str, name: str | None, sep: str) -> bool:
    """A name pattern matches the whole name or any part of it after ``sep``:
    ``sell`` matches ``__main__.sell``, ``Desk.handle_call`` matches
    ``shop.Desk.handle_call``, ``desk`` matches ``shop/desk``."""
    if name is None:
        return False
    return name_matcher(pattern, sep)(name)


@lru_cache(maxsize=256)
def name_matcher(pattern: str, sep: str) -> Callable[[str | None], bool]:
    """``name_matches`` of one pattern, its answers remembered by name (the store's
    function glob: one rule for ``calls of``, ``function =`` and ``events --function``)."""
    from elixirscope.store._events import FunctionGlob

    return FunctionGlob(pattern, sep)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def shown(value: Any) -> str:
    """A value's text as recorded (a string: itself)."""
    if isinstance(value, str):
        return str(value)
    return repr(value)


_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def compare(op: str, value: Any, literal: Any) -> bool:
    """``value OP literal`` by the rules in the module docstring."""
    if op == "!=":
        return not compare("=", value, literal)
    if literal is None:  # an HTTP attempt's code without a response (render.NoResponse) too
        return op == "=" and (value is None or isinstance(value, NoResponse))
    if value is None:
        return False
    if isinstance(literal, bool):
        return op == "=" and isinstance(value, bool) and value is literal
    if is_number(literal):
        if not is_number(value) or (isinstance(value, float) and math.isnan(value)):
            return False
        return value == literal if op == "=" else _ORDER[op](value, literal)
    if isinstance(literal, str):
        if op == "=":
            return glob(literal, shown(value))
        return isinstance(value, str) and _ORDER[op](str(value), literal)
    return False


def jsonable(value: Any) -> Any:
    """A decoded value as JSON data: lists (tuples stay tuples, which JSON writes as
    lists), dicts with text keys, objects as dicts with ``$class``, the rest as text."""
    if value is None or isinstance(value, (bool, str)):
        return str(value) if isinstance(value, Text) else value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**64 else repr(value)  # what msgpack carries
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, Fields):
        return {"$class": value.cls, **{str(k): jsonable(v) for k, v in value.items()}}
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {k: jsonable(v) for k, v in value.items()}
        out = KeyTexts()  # JSON's keys are texts: the table writes these back as recorded
        keys = [k if isinstance(k, str) else repr(k) for k in value]
        if len(set(keys)) < len(keys):  # {1: 'a', '1': 'b'}: every key as Python writes it
            keys = [repr(k) for k in value]
            out.written.update(keys)
        for k, key, v in zip(value, keys, value.values(), strict=True):
            if key is not k:
                out.written.add(key)
            out[key] = jsonable(v)
        return out
    if isinstance(value, tuple):
        return tuple(jsonable(v) for v in value)
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return repr(value)
