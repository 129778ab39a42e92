"""The call columns kept current in the background: a keeper over a real store extends them as
batches are stored, in bounded steps, so the next aggregate reads nothing but side files; it
gives way to queries; and a real daemon's Query layer keeps them current after a run."""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap

from daemons import make_daemon  # noqa: F401 - the fixture
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
        wait_until(lambda: keeper.chunks > read and keeper.current, timeout=60)
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


SCRIPT = textwrap.dedent("""\
    def price(n):
        return n * 2

    def checkout(items):
        return sum(price(i) for i in range(items))

    for _ in range(40):
        checkout(5)
""")


def test_a_daemon_keeps_the_columns_current_after_a_run(make_daemon, tmp_path):  # noqa: F811
    d = make_daemon()
    script = tmp_path / "shop.py"
    script.write_text(SCRIPT)
    keys = ("--daemon", d.endpoint, "--keys", str(d.keys_dir))
    for runs in (1,):  # (a second run: the same, extended; the test above shows that)
        done = subprocess.run(
            [sys.executable, "-m", "elixirscope", "run", *keys, str(script)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr

        def kept(runs: int = runs) -> bool:  # every call stored, the columns of all current
            answer = d.request(
                "esql",
                "query",
                timeout=60,
                query="count(*) from calls where depth >= 0",
                all_runs=True,
            )
            if not (answer.ok and answer.data["rows"] == [[runs * 240]]):
                return False
            kept = d.request("esql_columns", "query", timeout=30).data
            with EventStore.open(d.data_dir, readonly=True) as store:
                stored = {path: list(v) for path, v in store.shard_versions().items()}
            return kept["current"] and kept["versions"] == stored

        wait_until(kept, timeout=120, interval=0.5)
        answer = d.request(
            "esql", "query", timeout=60, query=f"count(*) from calls limit {runs}", all_runs=True
        )
        assert answer.data["rows"] == [[runs * 240]]
        assert answer.data["plan"]["engine"] == "columns"
        assert answer.data["plan"]["columns"] == "current"  # the keeper read, not the query


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
