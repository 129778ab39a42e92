"""Rows stream: a query with a limit stops reading, and calls held back for an earlier,
still-running call that could match stay bounded by the limit."""

from __future__ import annotations

import pytest

from elixirscope.query import esql
from elixirscope.store import EventStore


@pytest.fixture
def long_call(tmp_path, recorder):
    """One outer call spanning 3,000 short calls, in 60 batches of 100 calls each."""
    rec = recorder()
    with EventStore.open(tmp_path) as store:
        outer = rec.call("app.main")
        for batch in range(60):
            for i in range(50):
                inner = rec.call("app.step", parent=outer, n=str(batch * 50 + i))
                rec.ret(inner, "app.step", str(i), parent=outer)
            store.append(rec.batch())
        rec.ret(outer, "app.main", "None")
        store.append(rec.batch())
    return tmp_path


def test_a_limit_stops_the_read(long_call):
    every = esql.run("calls of 'step'", long_call)
    assert len(list(every)) == 3000
    first = esql.run("calls of 'step' limit 5", long_call)
    assert [r["args"]["n"] for r in first] == ["0", "1", "2", "3", "4"]
    assert first.explain["chunks_read"] <= 3 < every.explain["chunks_read"]


def test_rows_held_for_a_running_call_are_bounded_by_the_limit(long_call):
    # app.main could match (its duration is not known until it ends): every later call waits
    whole = esql.run("calls where duration > 0", long_call)
    assert len(list(whole)) == 3001
    assert whole.explain["held_at_most"] >= 3000
    few = esql.run("calls where duration > 0 limit 4", long_call)
    rows = list(few)
    assert [r["function"] for r in rows] == ["app.main", "app.step", "app.step", "app.step"]
    assert few.explain["held_at_most"] <= 2 * 4 + 16 + 1


def test_a_call_its_entry_rules_out_holds_nothing_back(long_call):
    result = esql.run("calls where args.n = '1*' and duration > 0", long_call)
    assert len(list(result)) == 1 + 10 + 100 + 1000
    assert result.explain["held_at_most"] <= 2  # app.main has no n: never waited for
