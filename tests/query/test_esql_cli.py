"""``elixirscope query``: a table, CSV, JSON, positioned errors as status 1, and the same
answer through a daemon's Query layer (real subprocesses, a real daemon)."""

from __future__ import annotations

import csv
import io
import json

from daemons import make_daemon  # noqa: F401 - the fixture
from esql_recordings import SHOP, elixirscope
from waiting import wait_until

from elixirscope.query import esql
from elixirscope.store import EventStore

QUERY = "calls of 'price' where args.item = 'tea'"


def test_a_table_with_the_run_it_read(shop_data):
    done = elixirscope("query", "--data-dir", str(shop_data), QUERY)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("run ") and "shop_prog.py" in lines[0]
    assert lines[1].split() == ["time", "function", "args", "outcome", "duration"]
    rows = lines[2:]
    assert len(rows) == len(list(esql.run(QUERY, shop_data))) > 0
    assert all(" price " in r and "item='tea'" in r and "-> 4.5" in r for r in rows)


def test_json_and_csv_carry_every_row_as_data(shop_data):
    expected = list(esql.run(QUERY, shop_data))
    done = elixirscope("query", "--data-dir", str(shop_data), QUERY, "--format", "json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["rows"] == expected and data["count"] == len(expected)
    assert data["columns"] == ["time", "function", "args", "outcome", "duration"]
    assert json.loads(elixirscope("query", "--data-dir", str(shop_data), QUERY, "--json").stdout) == data
    done = elixirscope("query", "--data-dir", str(shop_data), "id, function, duration from calls", "--format", "csv")
    table = list(csv.reader(io.StringIO(done.stdout)))
    calls = list(esql.run("id, function, duration from calls", shop_data))
    assert table[0] == ["id", "function", "duration"]
    assert table[1:] == [[str(c["id"]), c["function"], str(c["duration"])] for c in calls]


def test_a_bad_query_is_status_1_with_a_caret(shop_data):
    done = elixirscope("query", "--data-dir", str(shop_data), "calls where duraton > 5ms")
    assert done.returncode == 1 and done.stdout == ""
    first, query_line, marks = done.stderr.splitlines()
    assert first.startswith("elixirscope query: unknown field 'duraton' for calls; did you mean 'duration'?")
    assert query_line == "  calls where duraton > 5ms"
    assert marks == "              ^^^^^^^"
    done = elixirscope("query", "--data-dir", str(shop_data), "calls", "--json", "--format", "csv")
    assert done.returncode == 2 and "disagree" in done.stderr


def test_explain_and_max_rows(shop_data):
    done = elixirscope("query", "--data-dir", str(shop_data), "calls of 'price'", "--explain", "--max-rows", "2")
    assert done.returncode == 0, done.stderr
    assert "… more rows; the first 2 are shown" in done.stdout
    assert "the store's indexes: type=['call', 'return', 'exception']" in done.stdout
    assert "function='*price'" in done.stdout


def test_the_same_answer_through_a_daemon(make_daemon, tmp_path):  # noqa: F811
    d = make_daemon()
    assert d.request("endpoint", "capture", timeout=60).ok
    script = tmp_path / "shop_prog.py"
    script.write_text(SHOP)
    # recorded where the daemon's Query layer reads
    done = elixirscope("run", "--data-dir", str(d.data_dir), "--level", "args", str(script))
    assert done.returncode == 0, done.stderr
    local = list(esql.run(QUERY, d.data_dir))
    assert local

    def asked(*extra: str):
        done = elixirscope("query", "--daemon", d.endpoint, "--keys", str(d.keys_dir), *extra)
        return None if "unavailable" in done.stderr or "no answer" in done.stderr else done

    answer = wait_until(lambda: asked(QUERY, "--format", "json"), timeout=120)
    assert answer.returncode == 0, answer.stderr
    data = json.loads(answer.stdout)
    assert data["rows"] == local and data["more"] is False
    table = wait_until(lambda: asked(QUERY), timeout=120)
    assert table.returncode == 0 and table.stdout.splitlines()[1].split()[0] == "time"
    bad = wait_until(lambda: asked("calls wher x = 1"), timeout=120)
    assert bad.returncode == 1
    assert "did you mean 'where'?" in bad.stderr and bad.stderr.rstrip().endswith("^^^^")
    path = "trace from (calls of 'main') to (calls of 'price' limit 1)"
    traced = asked(path, "--format", "json")
    assert traced is not None and traced.returncode == 0, traced and traced.stderr
    assert json.loads(traced.stdout)["rows"] == list(esql.run(path, d.data_dir))
    none = asked("trace from (calls of 'price' limit 1) to (calls of 'main')")
    assert none is not None and none.returncode == 1
    assert "no causal path" in none.stderr and none.stderr.rstrip().endswith("^")
    console = d.console(f"query {QUERY}")
    assert console.returncode == 0, console.stderr
    assert console.stdout.splitlines()[1].split() == ["time", "function", "args", "outcome", "duration"]
    assert len(console.stdout.splitlines()) == 2 + len(local)

    # the Query layer keeps the call columns current in the background (ColumnKeeper):
    # once it has caught up with the store, an aggregate reads nothing but side files
    def kept() -> bool:
        status = d.request("esql_columns", "query", timeout=30).data
        with EventStore.open(d.data_dir, readonly=True) as store:
            stored = {path: list(v) for path, v in store.shard_versions().items()}
        return status["current"] and status["versions"] == stored

    wait_until(kept, timeout=120, interval=0.5)
    answer = d.request("esql", "query", timeout=60, query="function, count(*) from calls group by function")
    assert answer.ok and answer.data["plan"]["engine"] == "columns"
    assert answer.data["plan"]["columns"] == "current"  # the keeper read, not the query
