"""Reading recordings back: the Python API behind ``elixirscope events`` / ``calltree``.

``since``/``until`` accept nanoseconds (int or digits), an ISO-8601 datetime
(``2024-05-01T12:00:00Z``; without an offset it is local time), a
``datetime``, or a relative time ago: ``30s``, ``10m``, ``2h``, ``1d``, ``1w``.
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
_HINT = (
    "expected nanoseconds since the epoch, an ISO-8601 datetime"
    " (2024-05-01T12:00:00Z) or a time ago (30s, 10m, 2h, 1d, 1w)"
)


def parse_time(value: Any, *, field: str = "since", now_ns: int | None = None) -> int:
    """A time filter as HLC nanoseconds; ``QueryError`` naming ``field`` if unreadable."""
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
    try:
        return _datetime_ns(_dt.datetime.fromisoformat(text))
    except ValueError:
        raise QueryError(f"cannot read `{field}` {value!r}: {_HINT}") from None


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
            filters[name] = parse_time(filters[name], field=name)
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
