"""An answer as people and programs read it: an aligned table, CSV, JSON.

Rows hold JSON-able values (times and durations in nanoseconds); each column's
kind says how a person reads it: times as the local clock to the millisecond,
durations as ``12.3 µs``, ``__main__.`` left off function names, arguments as
``name=value``; a text longer than :data:`MAX_CELL` is cut with ``…`` and its
line breaks shown as ``⏎``, so one long value (an exit reason with its
traceback) does not push every other column off the screen. CSV and JSON
carry the values themselves, whole.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

__all__ = [
    "NoResponse",
    "cell",
    "clock",
    "csv_lines",
    "json_rows",
    "no_response_reason",
    "plain",
    "table",
]


class NoResponse(str):
    """An HTTP attempt's ``code`` when no response came: why (``timeout``, or the
    exception's type). A table shows it; JSON and CSV carry null (:func:`plain`), as a
    status code 0 would read like a real one."""

    __slots__ = ()


def no_response_reason(call: Any) -> str:
    """Why an HTTP attempt (an ``HttpCall`` with status 0) got no response: ``timeout``,
    else the exception's type (``ConnectError``)."""
    why = "timeout" if call.timeout else (call.error or "").split(":", 1)[0].strip()
    return why or "no response"


def plain(value: Any) -> Any:
    """A row's value as JSON and CSV carry it."""
    return None if isinstance(value, NoResponse) else value


_RIGHT = frozenset({"int", "duration", "number"})
MAX_CELL = 100
"""Characters a table cell shows at most (``--format json`` or ``csv`` for the whole value)."""


def cell(value: Any, kind: str, named: Callable[[str], str] | None = None) -> str:
    """One value as a table shows it, on one line and at most :data:`MAX_CELL` long;
    ``named``: what writes the actor addresses it holds as the actors they reached
    (``query.addresses.namer``)."""
    text = _cell(value, kind)
    if named is not None:
        text = named(text)
    if "\n" in text or "\r" in text:
        text = text.replace("\r\n", "⏎").replace("\n", "⏎").replace("\r", "⏎")
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def _cell(value: Any, kind: str) -> str:
    if value is None:
        return "-"
    if kind == "time" and isinstance(value, (int, float)):
        return clock(int(value))
    if kind == "duration" and isinstance(value, (int, float)):
        from elixirscope.query.calltree import format_duration

        return format_duration(max(0, round(value)))
    if kind == "path" and isinstance(value, str):
        from elixirscope.query.threads import short_path

        return short_path(value) or value
    if kind == "function" and isinstance(value, str):
        return value.removeprefix("__main__.")
    if kind == "args" and isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, float):
        return f"{value:.6g}" if kind == "number" else repr(value)
    if isinstance(value, (dict, list, tuple)):
        return _written(value)
    return str(value)


class KeyTexts(dict[str, Any]):
    """A recorded dict some of whose keys were not texts (``{1: 'a'}``), as JSON carries
    it: each such key written as Python writes it (``"1"``), and named in ``written`` so
    that a table writes it back unquoted, as it was recorded (``values.jsonable``)."""

    __slots__ = ("written",)

    def __init__(self) -> None:
        super().__init__()
        self.written: set[str] = set()


def _written(value: Any) -> str:
    """A decoded value as Python writes it, an object (a dict with ``$class``, as
    ``values.jsonable`` gives it) as ``Class(field=value, ...)``, as it was recorded."""
    if isinstance(value, dict):
        if isinstance(value.get("$class"), str):
            fields = ", ".join(f"{k}={_written(v)}" for k, v in value.items() if k != "$class")
            return f"{value['$class']}({fields})"
        keys = value.written if isinstance(value, KeyTexts) else ()
        return (
            "{"
            + ", ".join(f"{k if k in keys else repr(k)}: {_written(v)}" for k, v in value.items())
            + "}"
        )
    if isinstance(value, list):
        return "[" + ", ".join(_written(v) for v in value) + "]"
    if isinstance(value, tuple):
        return "(" + ", ".join(_written(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return repr(value)


def clock(ns: int) -> str:
    """The local clock, the millisecond *within which* ``ns`` falls (never rounded up,
    so ``--at``/``--until`` given this text include the event)."""
    try:
        when = _dt.datetime.fromtimestamp(ns // 10**9)
    except (OverflowError, OSError, ValueError):
        return str(ns)
    return when.strftime("%H:%M:%S.") + f"{ns // 10**6 % 1000:03d}"


def table(
    names: Sequence[str],
    kinds: Sequence[str],
    rows: Iterable[Sequence[Any]],
    named: Callable[[str], str] | None = None,
) -> str:
    """An aligned table with a header line (``named``: as :func:`cell` takes it)."""
    cells = [list(names)] + [
        [cell(v, k, named) for v, k in zip(row, kinds, strict=True)] for row in rows
    ]
    widths = [max(len(r[i]) for r in cells) for i in range(len(names))]
    lines = []
    for r in cells:
        parts = [
            c.rjust(w) if k in _RIGHT else c.ljust(w)
            for c, w, k in zip(r, widths, kinds, strict=True)
        ]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def json_rows(names: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    return [dict(zip(names, map(plain, row), strict=True)) for row in rows]


def csv_lines(names: Sequence[str], rows: Iterable[Sequence[Any]]) -> Iterable[str]:
    """The header, then one CSV line per row (containers as JSON text)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(names)
    yield buffer.getvalue()
    for row in rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(
            [
                ""
                if v is None or isinstance(v, NoResponse)
                else json.dumps(v, default=str)
                if isinstance(v, (dict, list))
                else v
                for v in row
            ]
        )
        yield buffer.getvalue()
