"""The sqlite3 integration's per-query shortcuts keep what is recorded: a SELECT's
event waits on its cursor (a weak reference to it) and is recorded when the cursor
goes, in a reference cycle too; the walk to the issuing line may start further out."""

from __future__ import annotations

import gc
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest

from elixirscope.capture import recorder
from elixirscope.integrations import db_common
from elixirscope.integrations import sqlite as sqlite_integration

TAG, STATEMENT, ROWS, FILE, CALLER = 0, 8, 11, 12, 14


@pytest.fixture
def rec() -> Iterator[Any]:
    had = recorder.current()
    installed = recorder.install() if had is None else had
    installed.ring.drain()
    sqlite_integration.enable()
    try:
        yield installed
    finally:
        sqlite_integration.disable()
        db_common.finish_pending()
        if had is None:
            recorder.uninstall()


def _queries(rec: Any) -> dict[str, Any]:
    return {e[STATEMENT]: e for e in rec.ring.drain() if e[TAG] == "query"}


def test_a_cursor_dropped_in_a_cycle_records_its_query_when_collected(rec: Any) -> None:
    conn = sqlite3.connect(":memory:")
    cur = conn.execute("SELECT 1 UNION ALL SELECT 2 -- in a cycle")
    cur.fetchone()
    cycle: list[Any] = [cur]
    cycle.append(cycle)
    del cur, cycle
    assert "SELECT 1 UNION ALL SELECT 2 -- in a cycle" not in _queries(rec)
    gc.collect()
    got = _queries(rec)["SELECT 1 UNION ALL SELECT 2 -- in a cycle"]
    assert got[ROWS] == 1
    assert got[CALLER].endswith("test_a_cursor_dropped_in_a_cycle_records_its_query_when_collected")
    assert not db_common._pending


def test_a_query_recorded_leaves_the_waiting_set_and_two_on_one_cursor_are_two(
    rec: Any,
) -> None:
    conn = sqlite3.connect(":memory:")
    cur = conn.cursor()
    cur.execute("SELECT 1 -- first")
    first = cur._es_pending
    cur.execute("SELECT 2 -- second")  # the first recorded, rows given: none
    assert first is not None and first.before is None
    assert db_common._pending == {cur._es_pending}
    cur.fetchall()
    assert not db_common._pending
    got = _queries(rec)
    assert (got["SELECT 1 -- first"][ROWS], got["SELECT 2 -- second"][ROWS]) == (0, 1)


def test_a_recording_cursor_on_a_connection_not_made_here_is_not_recorded(rec: Any) -> None:
    cursor_class = type(sqlite3.connect(":memory:").cursor())
    plain = sqlite_integration._original_connect(":memory:")
    assert plain.cursor(cursor_class).execute("SELECT 7").fetchall() == [(7,)]
    assert _queries(rec) == {}


def test_the_walk_to_the_issuing_line_starts_where_asked_or_at_the_caller() -> None:
    here = db_common.issuing_frame()
    assert here[0] == __file__
    assert db_common.issuing_frame(10_000)[::2] == here[::2]  # deeper than the stack
