"""The writer's multi-row INSERTs store exactly the rows given, whatever their number."""

from __future__ import annotations

import sqlite3

from hypothesis import given, settings
from hypothesis import strategies as st

from elixirscope.store._shard import _insert_rows


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(-(2**63), 2**63 - 1), st.binary(max_size=8)), max_size=700))
def test_every_row_is_inserted_once_in_order(rows):
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("CREATE TABLE t(a INTEGER, b BLOB)")
    _insert_rows(conn, "t", 2, rows)
    assert conn.execute("SELECT a, b FROM t ORDER BY rowid").fetchall() == rows


def test_a_failing_row_fails_the_insert_and_the_transaction_can_roll_back():
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("CREATE TABLE t(a INTEGER PRIMARY KEY, b BLOB)")
    conn.execute("BEGIN")
    try:
        _insert_rows(conn, "t", 2, [(1, b""), (2, b""), (1, b"again")])
    except sqlite3.IntegrityError as exc:
        assert "UNIQUE" in str(exc)
    else:
        raise AssertionError("a repeated key must fail")
    conn.execute("ROLLBACK")
    assert conn.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 0
