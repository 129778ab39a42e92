"""``elixirscope export --format parquet``: the events of real recordings as Parquet, read
back with DuckDB and pyarrow and compared with the store."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter, defaultdict
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from actor_program import ACTORS as PROGRAM
from actor_program import WORKER
from cli_programs import elixirscope

from elixirscope.contracts.trace import EVENT_TYPES, FunctionError, FunctionExit
from elixirscope.query.columnar import COLUMNS, LEFT_OUT, RENAMED, export_parquet
from elixirscope.query.rundiff import p95
from elixirscope.store import EventStore

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
MICROSECOND = dt.timedelta(microseconds=1)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> tuple[Path, list[str]]:
    """Two runs of PROGRAM (40 then 25 iterations); their ids, oldest first."""
    where = tmp_path_factory.mktemp("export")
    (where / "worker.py").write_text(WORKER)
    (where / "prog.py").write_text(PROGRAM)
    data = where / "data"
    for n in ("40", "25"):
        done = elixirscope("run", "--data-dir", str(data), "--level", "args", "--trace",
                           "__main__", "prog.py", n, cwd=where)
        assert done.returncode == 0, done.stderr
    runs = json.loads(elixirscope("runs", "--data-dir", str(data), "--json").stdout)["runs"]
    return data, [r["id"] for r in reversed(runs)]


def stored(data: Path, run: str | None = None):
    with EventStore.open(data, readonly=True) as store:
        return store.query(limit=None, **({"run": run} if run else {}))


def test_one_run_round_trips_every_event_field_by_field(recorded, tmp_path):
    data, (first, latest) = recorded
    out = tmp_path / "latest.parquet"
    done = elixirscope("export", "--format", "parquet", "--data-dir", str(data),
                       "--out", str(out))
    assert done.returncode == 0, done.stderr
    events = stored(data, latest)
    assert done.stdout.startswith(f"wrote {len(events):,} events of run {latest[:8]} to {out}\n")

    rows = pq.read_table(out).to_pylist()
    assert len(rows) == len(events)
    by_key = {(r["producer"], r["id"]): r for r in rows}
    assert len(by_key) == len(rows)
    for se in events:
        row = by_key[(se.producer, se.event.id)]
        assert row["run"] == latest
        assert (row["node"], row["pid"], row["program"]) == (se.node, se.pid, se.program)
        assert (row["time"] - EPOCH) // MICROSECOND == se.event.ts // 1000
        expected = se.to_dict()
        for name in LEFT_OUT:
            expected.pop(name, None)
        for name, value in expected.items():
            if name in ("node", "pid", "program", "producer"):
                continue
            column = RENAMED.get((se.type, name), name)
            got = row[column]
            if COLUMNS[column] == "json" and got is not None:
                got = json.loads(got)
                value = json.loads(json.dumps(value))
            assert got == value, (se.type, name)
        fields = {RENAMED.get((se.type, n), n) for n in expected} | {"time", "run"}
        assert all(row[c] is None for c in COLUMNS if c not in fields), se.type


def test_counts_per_type_and_p95_per_function_agree_with_the_store(recorded, tmp_path):
    data, (first, latest) = recorded
    out = tmp_path / "all.parquet"
    done = elixirscope("export", "--data-dir", str(data), "--all-runs", "--out", str(out))
    assert done.returncode == 0, done.stderr
    events = stored(data)
    source = f"'{out}'"

    counted = dict(duckdb.sql(f"SELECT type, count(*) FROM {source} GROUP BY type").fetchall())
    assert counted == Counter(se.type for se in events)
    assert {"call", "return", "exception", "yield", "resume", "state", "send", "receive",
            "custom", "thread"} <= set(counted)
    per_run = dict(duckdb.sql(f"SELECT run, count(*) FROM {source} GROUP BY run").fetchall())
    assert per_run == {run: len(stored(data, run)) for run in (first, latest)}

    durations = defaultdict(list)
    for se in events:
        if isinstance(se.event, (FunctionExit, FunctionError)):
            durations[se.event.function].append(se.event.duration_ns)
    answer = dict(duckdb.sql(
        f"SELECT function, quantile_disc(duration_ns, 0.95) FROM {source} "
        "WHERE type IN ('return', 'exception') GROUP BY function"
    ).fetchall())
    assert answer == {function: p95(ds) for function, ds in durations.items()}
    assert set(answer) == {f"__main__.{f}" for f in ("square", "evens", "fail", "main")}


def test_a_directory_gets_one_file_per_run(recorded, tmp_path):
    data, runs = recorded
    out = tmp_path / "runs"
    done = elixirscope("export", "--data-dir", str(data), "--all-runs", "--out", str(out),
                       "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{r}.parquet" for r in runs)
    for run in runs:
        table = pq.read_table(out / f"{run}.parquet")
        assert table.num_rows == len(stored(data, run))
        assert set(table.column("run").to_pylist()) == {run}
    assert report["events"] == len(stored(data)) == sum(f["events"] for f in report["files"])


def test_small_record_batches_write_the_same_rows(recorded, tmp_path):
    data, (first, _) = recorded
    one = export_parquet(str(data), str(tmp_path / "one.parquet"), run=first[:5])
    many = export_parquet(str(data), str(tmp_path / "many.parquet"), run=first, batch_rows=7)
    assert one["events"] == many["events"] == len(stored(data, first))
    assert pq.ParquetFile(tmp_path / "many.parquet").metadata.num_row_groups > 10
    assert pq.read_table(tmp_path / "one.parquet").equals(pq.read_table(tmp_path / "many.parquet"))


def test_every_contract_field_is_a_column_or_left_out_on_purpose():
    for tag, cls in EVENT_TYPES.items():
        for name in cls.__struct_fields__:
            assert name in LEFT_OUT or RENAMED.get((tag, name), name) in COLUMNS, (tag, name)


def test_the_store_streams_chunks_with_their_runs(recorded):
    data, runs = recorded
    with EventStore.open(data, readonly=True) as store:
        streamed = [(run, se) for run, chunk in store.chunks() for se in chunk]
        everything = store.query(limit=None)
        one = [se for _, chunk in store.chunks(run=runs[0], type="call") for se in chunk]
    assert sorted((se.producer, se.event.id) for _, se in streamed) == sorted(
        (se.producer, se.event.id) for se in everything
    )
    producers = defaultdict(set)
    for run, se in streamed:
        producers[se.producer].add(run)
    assert all(len(r) == 1 for r in producers.values()) and {
        r for rs in producers.values() for r in rs
    } == set(runs)
    assert one and all(se.type == "call" for se in one)
    assert len(one) == sum(1 for se in stored(data, runs[0]) if se.type == "call")


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--run", "zzzz", "--out", "x.parquet"], "no run 'zzzz'"),
        (["--out", "."], None),  # a directory: fine
        (["--format", "csv", "--out", "x.csv"], "invalid choice: 'csv'"),
    ],
)
def test_bad_input_says_what_is_wrong(recorded, tmp_path, args, said):
    data, _ = recorded
    done = elixirscope("export", "--data-dir", str(data), *args, cwd=tmp_path)
    if said is None:
        assert done.returncode == 0, done.stderr
        return
    assert done.returncode in (1, 2) and said in done.stderr
    assert "Traceback" not in done.stderr


def test_an_empty_data_dir_is_an_error_not_an_empty_file(tmp_path):
    done = elixirscope("export", "--data-dir", str(tmp_path / "none"), "--out",
                       str(tmp_path / "x.parquet"))
    assert done.returncode == 1 and "nothing recorded under" in done.stderr
    assert not (tmp_path / "x.parquet").exists()


def test_a_parquet_file_is_made_as_the_program_s_files_are(recorded, tmp_path):
    """0666 less the umask, as ``open`` makes files (and the other exports do), not the
    0600 of a temporary file: others read it as they read what the program writes."""
    import os
    import stat

    data, _runs = recorded
    out = tmp_path / "events.parquet"
    done = elixirscope("export", "--data-dir", str(data), "--out", str(out))
    assert done.returncode == 0, done.stderr
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~mask
