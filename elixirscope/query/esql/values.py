"""Recorded values as ESQL compares them: decoded from their text, never evaluated.

Arguments, returns and messages are recorded as bounded, redacted ``repr``
text (``elixirscope.capture.values``). :func:`decode` reads such a text back
into a value when it is a literal — numbers, strings, lists, tuples, dicts,
sets, ``True``/``False``/``None`` — and an object shown as ``Name(field=...)``
into a :class:`Fields` mapping of its fields, using only :mod:`ast` parsing
(nothing of the program runs); any other text (``<redacted>``, a cut value,
``<Foo object at 0x…>``) stays a :class:`Text`.

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
import fnmatch
import math
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from elixirscope.query.esql.render import NoResponse

__all__ = [
    "Fields",
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
    """Recorded text that is not a literal: compared and shown as it is."""

    __slots__ = ()


class Fields(dict):
    """An object recorded as ``Name(field=value, ...)``: its fields by name."""

    __slots__ = ("cls",)

    def __init__(self, cls: str, fields: dict[str, Any]) -> None:
        super().__init__(fields)
        self.cls = cls

    def __repr__(self) -> str:
        return f"{self.cls}({', '.join(f'{k}={v!r}' for k, v in self.items())})"


class _NotLiteral(Exception):
    pass


@lru_cache(maxsize=4096)
def decode(text: str | None) -> Any:
    """The value a recorded text shows, or the text itself as :class:`Text`."""
    if text is None:
        return None
    if len(text) > MAX_DECODE_CHARS:
        return Text(text)
    try:
        return _value(ast.parse(text.strip(), mode="eval").body)
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError, _NotLiteral):
        return Text(text)


def _value(node: ast.AST) -> Any:
    kind = type(node)
    if kind is ast.Constant:
        return node.value  # type: ignore[attr-defined]
    if kind is ast.UnaryOp and isinstance(node.op, (ast.USub, ast.UAdd)):  # type: ignore[attr-defined]
        inner = _value(node.operand)  # type: ignore[attr-defined]
        if isinstance(inner, bool) or not isinstance(inner, (int, float, complex)):
            raise _NotLiteral
        return -inner if isinstance(node.op, ast.USub) else inner  # type: ignore[attr-defined]
    if kind is ast.List:
        return [_value(e) for e in node.elts]  # type: ignore[attr-defined]
    if kind is ast.Tuple:
        return tuple(_value(e) for e in node.elts)  # type: ignore[attr-defined]
    if kind is ast.Set:
        items = [_value(e) for e in node.elts]  # type: ignore[attr-defined]
        return _Unhashable.guard(set, items)
    if kind is ast.Dict:
        keys = [None if k is None else _value(k) for k in node.keys]  # type: ignore[attr-defined]
        values = [_value(v) for v in node.values]  # type: ignore[attr-defined]
        return _Unhashable.guard(dict, list(zip(keys, values, strict=True)))
    if kind is ast.Call and not node.args:  # type: ignore[attr-defined]
        name = _dotted(node.func)  # type: ignore[attr-defined]
        fields = {kw.arg: _value(kw.value) for kw in node.keywords if kw.arg}  # type: ignore[attr-defined]
        if name == "set" and not fields:
            return set()
        return Fields(name, fields)
    if kind is ast.BinOp and isinstance(node.op, (ast.Add, ast.Sub)):  # type: ignore[attr-defined]
        left, right = _value(node.left), _value(node.right)  # type: ignore[attr-defined]
        if isinstance(left, (int, float)) and isinstance(right, complex):  # 1+2j
            return left + right if isinstance(node.op, ast.Add) else left - right  # type: ignore[attr-defined]
    raise _NotLiteral


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
        return {k if isinstance(k, str) else repr(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(jsonable(v) for v in value)
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return repr(value)
