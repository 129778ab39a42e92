"""Reading recordings back: the Python API behind ``elixirscope events`` / ``calltree``.

``since``/``until`` accept nanoseconds (int or digits), an ISO-8601 datetime
(``2024-05-01T12:00:00Z``; without an offset it is local time), a
``datetime``, a relative time ago: ``30s``, ``10m``, ``2h``, ``1d``, ``1w``,
or a time of day as the tables show it (``15:34:54.316``, ``15:34``: local
time, on the day that puts it nearest the moment the caller reads from — the
run's start for ``state --at``, else now).
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import time
from typing import Any

from elixirscope.query.calltree import CallNode, build_call_tree
from elixirscope.store.errors import QueryError
from elixirscope.store.eventstore import EventStore, StoredEvent
from elixirscope.store.incomplete import Found

__all__ = ["call_tree", "events", "parse_time"]

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNIT_NS = {"s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9, "d": 86400 * 10**9, "w": 604800 * 10**9}
_TIME_OF_DAY = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?$")
_HINT = (
    "expected nanoseconds since the epoch, an ISO-8601 datetime"
    " (2024-05-01T12:00:00Z), a time of day (15:34:54.316) or a time ago"
    " (30s, 10m, 2h, 1d, 1w)"
)


def parse_time(
    value: Any,
    *,
    field: str = "since",
    now_ns: int | None = None,
    near_ns: int | None = None,
    through: bool = False,
) -> int:
    """A time filter as HLC nanoseconds; ``QueryError`` naming ``field`` if unreadable.
    A time of day is taken on the day nearest ``near_ns`` (default: now); with
    ``through`` it means the end of the time it names (``15:34:54.316``: the last
    nanosecond of that millisecond), as a moment shown so includes what happened in it."""
    if isinstance(value, bool):
        raise QueryError(f"cannot read `{field}` {value!r}: {_HINT}")
    if isinstance(value, int):
        return value
    if isinstance(value, _dt.datetime):
        return _datetime_ns(value)
    if not isinstance(value, str):
        raise QueryError(
            f"Expected `str | int | datetime`, got `{type(value).__name__}` - at `{field}`"
        )
    text = value.strip()
    if text.isdigit():
        return int(text)
    match = _RELATIVE.match(text)
    if match:
        now = time.time_ns() if now_ns is None else now_ns
        ago = float(match.group(1)) * _UNIT_NS[match.group(2)]
        if ago >= 2**63:  # inf for absurdly long digit strings
            raise QueryError(f"cannot read `{field}` {value[:40]!r}: further back than 1970")
        return now - int(ago)
    match = _TIME_OF_DAY.match(text)
    if match:
        near = near_ns if near_ns is not None else (time.time_ns() if now_ns is None else now_ns)
        return _time_of_day_ns(match, near, field, value, through)
    try:
        return _datetime_ns(_dt.datetime.fromisoformat(text))
    except ValueError:
        raise QueryError(f"cannot read `{field}` {value!r}: {_HINT}") from None


def _time_of_day_ns(
    match: re.Match[str], near_ns: int, field: str, value: str, through: bool
) -> int:
    """``HH:MM[:SS[.fraction]]`` local time on the day (before, of or after ``near_ns``'s)
    that puts it nearest ``near_ns``; its start, or with ``through`` its end."""
    hour, minute, second = int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)
    if hour > 23 or minute > 59 or second > 59:
        raise QueryError(f"cannot read `{field}` {value!r}: no such time of day")
    fraction_ns = int((match.group(4) or "").ljust(9, "0"))
    day = _dt.datetime.fromtimestamp(near_ns / 1e9).date()
    candidates = [
        _datetime_ns(
            _dt.datetime.combine(day + _dt.timedelta(days=shift), _dt.time(hour, minute, second))
        )
        + fraction_ns
        for shift in (-1, 0, 1)
    ]
    start = min(candidates, key=lambda ns: abs(ns - near_ns))
    if not through:
        return start
    if match.group(3) is None:
        return start + 60 * 10**9 - 1
    return start + 10 ** (9 - len(match.group(4) or "")) - 1


def _datetime_ns(when: _dt.datetime) -> int:
    if when.tzinfo is None:
        when = when.astimezone()  # a naive datetime is the reader's local time
    delta = when - _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
    return (delta.days * 86400 + delta.seconds) * 10**9 + delta.microseconds * 1000


def events(data_dir: str | os.PathLike[str], **filters: Any) -> list[StoredEvent]:
    """Stored events matching ``filters`` (those of ``EventStore.query``), read-only.

    ``since``/``until`` may be any form :func:`parse_time` reads. The list's
    ``warnings`` say what could not be read (damaged or quarantined shards).
    """
    for name in ("since", "until"):
        if filters.get(name) is not None:
            filters[name] = parse_time(filters[name], field=name, through=name == "until")
    with EventStore.open(data_dir, readonly=True) as store:
        return store.query(**filters)


def call_tree(
    data_dir: str | os.PathLike[str], correlation_id: str, run: str | None = None
) -> list[CallNode]:
    """The call tree of one correlation chain (empty if nothing was recorded for it),
    within one ``run`` if given; its ``warnings`` as :func:`events`'."""
    if not isinstance(correlation_id, str) or not correlation_id:
        raise QueryError(
            f"Expected a non-empty `str`, got {correlation_id!r} - at `correlation_id`"
        )
    with EventStore.open(data_dir, readonly=True) as store:
        found = store.query(correlation_id=correlation_id, run=run, limit=None)
        return Found(build_call_tree(found), found.warnings)
