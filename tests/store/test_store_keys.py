"""A writer's key ids: one per (kind, value) across writers, found through the index."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from elixirscope.store._shard import Shard

KEYS = st.tuples(st.sampled_from(["c", "f", "a", "t"]), st.text(min_size=1, max_size=12))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(earlier=st.lists(KEYS, max_size=60), later=st.lists(KEYS, max_size=60))
def test_a_later_writer_finds_the_ids_an_earlier_one_gave(tmp_path: Path, earlier, later) -> None:
    path = str(tmp_path / f"keys-{abs(hash((tuple(earlier), tuple(later))))}.sqlite3")
    first = Shard(path, readonly=False)
    first._store_keys(earlier)
    shadow = {k: first._key_id(k) for k in earlier}  # what the first writer gave
    first.close()
    second = Shard(path, readonly=False)  # nothing remembered: every key looked up or new
    second._store_keys(later)
    given_ids = {k: second._key_id(k) for k in later}
    for key, key_id in given_ids.items():
        if key in shadow:
            assert key_id == shadow[key], key
    assert len(set(given_ids.values()) | set(shadow.values())) == len(set(given_ids) | set(shadow))
    rows = second.conn.execute("SELECT COUNT(*) FROM key").fetchone()[0]
    assert rows == len(set(earlier) | set(later))
    second.close()


def test_keys_stored_by_an_earlier_writer_are_looked_up_in_the_index(tmp_path: Path) -> None:
    """Not a scan of the key table: the first batch of every run into a large data dir
    looks up the names earlier runs stored (a scan took 96 ms at 1.2 M keys)."""
    path = str(tmp_path / "s.sqlite3")
    first = Shard(path, readonly=False)
    first._store_keys([("f", "m.handle"), ("t", "call"), ("c", "x" * 32)])
    first.close()
    second = Shard(path, readonly=False)
    statements: list[str] = []
    second.conn.set_trace_callback(statements.append)
    second._store_keys([("f", "m.handle"), ("t", "call"), ("f", "m.new")])
    second.conn.set_trace_callback(None)
    lookups = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert lookups, statements  # the stored ones were looked up
    plain = sqlite3.connect(path)
    for statement in lookups:
        plan = " ".join(str(row[-1]) for row in plain.execute(f"EXPLAIN QUERY PLAN {statement}"))
        assert "SCAN key" not in plan and "SEARCH key" in plan, (statement, plan)
    plain.close()
    assert {second._key_id(("f", "m.handle")), second._key_id(("t", "call"))} <= {1, 2}
    second.close()
