"""The call columns kept current in the background: a keeper over a real store extends them as
batches are stored, in bounded steps, so the next aggregate reads nothing but side files; it
gives way to queries (a real daemon's Query layer keeping them: test_esql_cli)."""

from __future__ import annotations

import random

from esql_recordings import split_batches
from waiting import wait_until

from elixirscope.query import esql
from elixirscope.query.esql.keeper import ColumnKeeper
from elixirscope.store import EventStore

QUERY = "function, status, count(*), max(duration) from calls group by function, status"


def _explained(data) -> tuple[list, dict]:
    result = esql.run(QUERY, data, timeout=None, cache=False)
    rows = list(result.tuples())
    return rows, result.explain


def test_a_keeper_extends_the_columns_as_batches_are_stored(tmp_path):
    batches = split_batches(random.Random(4), producers=2, calls=600)
    half = len(batches) // 2
    with EventStore.open(tmp_path) as store:
        for batch in batches[:half]:
            store.append(batch)
    keeper = ColumnKeeper(str(tmp_path), every_s=0.05, max_chunks=2).start()
    try:
        wait_until(lambda: keeper.current, timeout=60)
        assert keeper.steps > 1 and keeper.problem == ""  # bounded steps: two chunks each
        rows, plan = _explained(tmp_path)
        assert plan["engine"] == "columns" and plan["columns"] == "current"
        read = keeper.chunks
        with EventStore.open(tmp_path) as store:
            for batch in batches[half:]:
                store.append(batch)
        with EventStore.open(tmp_path, readonly=True) as store:  # what was stored, all of it
            stored = {path: list(v) for path, v in store.shard_versions().items()}
        # current for every batch (a step may end between two appends, current for fewer)
        wait_until(lambda: keeper.chunks > read and keeper.current and keeper.seen == stored,
                   timeout=60)
        again, plan = _explained(tmp_path)
        assert plan["columns"] == "current" and again != rows
        assert again == list(esql.run(QUERY, tmp_path, timeout=None, columns=False).tuples())
    finally:
        keeper.close()
    assert keeper.status()["current"] is True


def test_a_keeper_gives_way_while_a_query_runs(tmp_path):
    with EventStore.open(tmp_path) as store:
        for batch in split_batches(random.Random(5), producers=1, calls=50):
            store.append(batch)
    keeper = ColumnKeeper(str(tmp_path), busy=lambda: True, every_s=0.01).start()
    keeper.poke()
    keeper.close()
    assert keeper.steps == 0 and not (tmp_path / "columns").exists()
    _rows, plan = _explained(tmp_path)
    assert plan["columns"] == "built"  # the query built them itself
    _rows, plan = _explained(tmp_path)
    assert plan["columns"] == "current"
    from elixirscope.cli.query import _explained as shown

    assert (
        "  engine: columns\n  call columns: current (nothing read but their side files)"
        in shown(plan)
    )


def test_a_store_being_written_to_is_extended_by_large_parts(tmp_path):
    """Not eager (commits since the last look): a side file behind by less than an eighth
    of what it holds waits; eager, it is extended; a step may read a quarter of it."""
    from elixirscope.query.esql.callcolumns import refresh

    batches = split_batches(random.Random(6), producers=1, calls=1200)
    with EventStore.open(tmp_path) as store:
        for batch in batches[:-1]:
            store.append(batch)
    with EventStore.open(tmp_path, readonly=True) as store:
        assert refresh(store, str(tmp_path), 1000) == (True, len(batches) - 1)
    with EventStore.open(tmp_path) as store:
        store.append(batches[-1])
    with EventStore.open(tmp_path, readonly=True) as store:
        assert refresh(store, str(tmp_path), 1, eager=False) == (False, 0)
        assert refresh(store, str(tmp_path), 1) == (True, 1)
