"""A damaged store degrades, never loops: real damage written into real shard files.

Garbage pages, a cut-short write-ahead log and a corrupt chunk blob: reads skip
what they cannot read and say so, ``store check`` finds it (exit 1),
``--repair`` quarantines and salvages (exit 0), writers start afresh.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from elixirscope.store import EventStore
from elixirscope.store.check import check_store
from elixirscope.store.incomplete import warning_line

PAGE = 8192
PER_WRITER = 6000  # 60 batches of 100 events, 20 events a chunk


def _record(data_dir, recorder, *, keep_wal: bool = False):
    """Two writers, two shards, 12,000 events; returns the open writers if ``keep_wal``."""
    writers = [EventStore.open(data_dir) for _ in range(2)]
    for w, store in enumerate(writers):
        rec = recorder(producer=f"p{w}:1:1")
        for b in range(60):
            for i in range(50):
                cid = f"c{w}-{b}-{i % 5}"
                rec.ret(rec.call("m.f", cid=cid), "m.f", cid=cid)
            store.append(rec.batch())
    if keep_wal:
        return writers
    for store in writers:
        store.close()
    return None


def _shard(data_dir, n: int) -> str:
    return str(data_dir / "events" / f"shard-{n:03d}.sqlite3")


def _read(data_dir):
    with EventStore.open(data_dir, readonly=True) as reader:
        return reader.query(limit=None)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "elixirscope", *args], capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)


def _garbage_pages(path: str, pages: list[int]) -> None:
    with open(path, "r+b") as f:
        for page in pages:
            f.seek(page * PAGE)
            f.write(os.urandom(PAGE))


def _corrupt_chunk(path: str, chunk_id: int) -> int:
    """Overwrite one chunk's blob with bytes that are not zstd; its event count."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("UPDATE chunk_data SET data=? WHERE id=?", (b"Z" + os.urandom(64), chunk_id))
        conn.commit()
        return conn.execute("SELECT events FROM chunk WHERE id=?", (chunk_id,)).fetchone()[0]
    finally:
        conn.close()


def test_a_corrupt_chunk_is_counted_missing_checked_and_salvaged_around(tmp_path, recorder):
    _record(tmp_path, recorder)
    lost = _corrupt_chunk(_shard(tmp_path, 1), 7)
    found = _read(tmp_path)
    assert len(found) == 2 * PER_WRITER - lost
    [warning] = found.warnings
    assert warning["shard"] == "shard-001.sqlite3" and warning["events_missing"] == lost
    assert f"{lost} events missing" in warning_line(found.warnings)

    report = check_store(tmp_path)
    assert not report["ok"] and report["damaged"] == 1
    bad = next(s for s in report["shards"] if s["status"] == "damaged")
    assert bad["bad_chunks"] == 1 and bad["events_unreadable"] == lost
    assert any("chunk 7" in p for p in bad["problems"])

    repaired = check_store(tmp_path, repair=True)
    assert repaired["ok"] and repaired["repaired"] == 1
    repair = next(s["repair"] for s in repaired["shards"] if s["status"] == "repaired")
    assert repair["events_salvaged"] == PER_WRITER - lost and repair["events_lost"] == lost
    after = _read(tmp_path)
    assert len(after) == 2 * PER_WRITER - lost  # everything readable is still served
    [warning] = after.warnings  # and the quarantine is still named, with what it lost
    assert "quarantined" in warning["problem"] and warning["events_missing"] == lost
    assert check_store(tmp_path)["ok"]


def test_garbage_pages_skip_the_shard_with_a_warning_and_a_writer_starts_afresh(tmp_path, recorder):
    _record(tmp_path, recorder)
    path = _shard(tmp_path, 1)
    pages = os.path.getsize(path) // PAGE
    _garbage_pages(path, [3, pages // 3, pages // 2, pages - 2])
    found = _read(tmp_path)
    assert len(found) == PER_WRITER  # shard-000 whole, none of shard-001 reads
    assert found.warnings and {w["shard"] for w in found.warnings} == {"shard-001.sqlite3"}
    with EventStore.open(tmp_path, readonly=True) as reader:
        stats = reader.stats()  # no exception: the damaged shard is named instead
    assert stats["events"] == PER_WRITER and stats["shards_damaged"] == 1
    assert stats["damaged"][0]["shard"] == "shard-001.sqlite3"

    held = EventStore.open(tmp_path)  # takes the healthy shard-000
    try:
        with EventStore.open(tmp_path) as writer:  # claims shard-001: damaged, so afresh
            assert writer.shard_path == path
            rec = recorder(producer="new:1:1")
            rec.call("m.g", cid="fresh")
            assert writer.append(rec.batch()) == 1
    finally:
        held.close()
    [moved] = (tmp_path / "quarantine").iterdir()
    reason = json.loads((moved / "reason.json").read_text())
    assert reason["shard"] == "shard-001.sqlite3" and "malformed" in reason["reason"]
    assert len(_read(tmp_path)) >= PER_WRITER + 1


@pytest.mark.parametrize("shm", ["kept", "removed"])
def test_a_cut_short_wal_is_named_not_silent(tmp_path, recorder, shm):
    """The writers stop uncleanly (their WAL not yet folded back), then the WAL is cut."""
    script = (
        "import sys, os; sys.path[:0] = [sys.argv[2], os.path.dirname(sys.argv[2])];"
        "from recorded_batches import Recorder; from test_store_damage import _record;"
        "_record(__import__('pathlib').Path(sys.argv[1]), Recorder, keep_wal=True); os._exit(0)"
    )
    here = os.path.dirname(__file__)
    subprocess.run([sys.executable, "-c", script, str(tmp_path), here], check=True, timeout=120)
    wal = _shard(tmp_path, 1) + "-wal"
    assert os.path.getsize(wal) > 2_000_000
    os.truncate(wal, 2_000_000)
    if shm == "removed":
        os.remove(_shard(tmp_path, 1) + "-shm")
    found = _read(tmp_path)
    assert len(found) == PER_WRITER
    [warning] = found.warnings
    assert "write-ahead log is cut short" in warning["problem"]

    done = _cli("store", "check", "--data-dir", str(tmp_path))
    assert done.returncode == 1 and "cut short" in done.stdout, done.stdout + done.stderr
    done = _cli("store", "check", "--repair", "--data-dir", str(tmp_path), "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    repair = next(s["repair"] for s in report["shards"] if s["status"] == "repaired")
    salvaged = repair["events_salvaged"]
    assert 0 < salvaged < PER_WRITER  # what the WAL still held comes back
    assert len(_read(tmp_path)) == PER_WRITER + salvaged


def test_the_cli_warns_on_stderr_and_in_json_and_store_check_exits_1(tmp_path, recorder):
    _record(tmp_path, recorder)
    lost = _corrupt_chunk(_shard(tmp_path, 0), 3)
    done = _cli("events", "--data-dir", str(tmp_path), "--limit", "100000", "--json")
    assert done.returncode == 0
    data = json.loads(done.stdout)
    assert data["count"] == 2 * PER_WRITER - lost
    assert data["warnings"][0]["events_missing"] == lost
    assert done.stderr.count("\n") == 1 and "warning: incomplete read" in done.stderr
    done = _cli("events", "--data-dir", str(tmp_path), "--limit", "100000")
    assert done.stderr.startswith("warning: incomplete read") and "shard-000" in done.stderr
    done = _cli("calltree", "--data-dir", str(tmp_path), "c0-0-0", "--json")
    assert done.returncode == 0 and "warnings" in json.loads(done.stdout)

    done = _cli("store", "check", "--data-dir", str(tmp_path))
    assert done.returncode == 1
    assert "shard-000.sqlite3: damaged" in done.stdout and "chunk 3" in done.stdout
    assert "shard-001.sqlite3: ok" in done.stdout
    done = _cli("store", "check", "--data-dir", str(tmp_path), "--repair")
    assert done.returncode == 0 and "repaired" in done.stdout, done.stdout + done.stderr
    done = _cli("store", "check", "--data-dir", str(tmp_path))
    assert done.returncode == 0 and "quarantined earlier: shard-000.sqlite3" in done.stdout


def test_a_clean_store_checks_clean(tmp_path, recorder):
    _record(tmp_path, recorder)
    report = check_store(tmp_path)
    assert report["ok"] and [s["status"] for s in report["shards"]] == ["ok", "ok"]
    assert sum(s["events"] for s in report["shards"]) == 2 * PER_WRITER
    assert _read(tmp_path).warnings == []
    assert _cli("store", "check", "--data-dir", str(tmp_path)).returncode == 0


def test_index_entries_that_disagree_with_their_chunks_are_named(tmp_path, recorder):
    """An entry gone (a chunk its key no longer finds) and one no chunk lists (a key that
    finds a chunk without it); the check looks entries up in the index's own order."""
    _record(tmp_path, recorder)
    path = next(str(p) for p in sorted((tmp_path / "events").glob("*.sqlite3")))
    conn = sqlite3.connect(path)
    chunk_id, key_id = conn.execute("SELECT chunk_id, key_id FROM chunk_key LIMIT 1").fetchone()
    conn.execute("DELETE FROM chunk_key WHERE chunk_id=? AND key_id=?", (chunk_id, key_id))
    other = conn.execute("SELECT MAX(id) FROM chunk WHERE id != ?", (chunk_id,)).fetchone()[0]
    strays = conn.execute(
        "SELECT id FROM key WHERE id NOT IN (SELECT key_id FROM chunk_key WHERE chunk_id=?) LIMIT 2",
        (other,),
    ).fetchall()
    conn.executemany("INSERT INTO chunk_key VALUES (?, ?)", [(k, other) for (k,) in strays])
    conn.commit()
    conn.close()
    (shard,) = [s for s in check_store(tmp_path)["shards"] if s["path"] == path]
    assert shard["status"] == "damaged"
    assert any(f"chunk {chunk_id} " in p and "1 missing" in p for p in shard["problems"]), shard
    assert any("its index holds" in p for p in shard["problems"]), shard


def test_a_quarantining_reader_moves_a_damaged_idle_shard_and_serves_the_rest(tmp_path, recorder):
    _record(tmp_path, recorder)
    lost = _corrupt_chunk(_shard(tmp_path, 1), 11)
    with EventStore.open(tmp_path, readonly=True, quarantine=True) as reader:
        assert len(reader.query(limit=None)) == 2 * PER_WRITER - lost
        [moved] = reader.quarantine_damaged()
        assert moved["events_lost"] == lost
        stats = reader.stats()
        assert stats["shards_quarantined"] == 1 and stats["events"] == 2 * PER_WRITER - lost
        assert len(reader.query(limit=None)) == 2 * PER_WRITER - lost
    with EventStore.open(tmp_path, readonly=True, quarantine=True) as reader:
        holder = EventStore.open(tmp_path)  # a live writer's shard is never moved
        try:
            _corrupt_chunk(holder.shard_path, 2)
            reader.query(limit=None)
            assert reader.quarantine_damaged() == []
        finally:
            holder.close()


@pytest.fixture(scope="module")
def unclean_store(tmp_path_factory):
    """Two shards whose writers stopped without folding their WAL back (as after kill -9)."""
    from recorded_batches import Recorder

    base = tmp_path_factory.mktemp("unclean")
    here = os.path.dirname(__file__)
    script = (
        "import sys, os; sys.path[:0] = [sys.argv[2], os.path.dirname(sys.argv[2])];"
        "from recorded_batches import Recorder; from test_store_damage import _record;"
        "_record(__import__('pathlib').Path(sys.argv[1]), Recorder, keep_wal=True); os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", script, str(base), here], check=True, timeout=120)
    assert Recorder  # the writer subprocess used the same helper
    return base


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(cut=st.floats(min_value=0.0, max_value=1.0), keep_shm=st.booleans())
def test_any_cut_of_the_wal_is_reported_or_loses_nothing(unclean_store, tmp_path, cut, keep_shm):
    """Cut the WAL anywhere: either a read warns, or it still sees all 12,000 events."""
    import shutil

    data_dir = tmp_path / f"copy-{os.urandom(4).hex()}"
    shutil.copytree(unclean_store, data_dir)
    wal = _shard(data_dir, 1) + "-wal"
    size = os.path.getsize(wal)
    os.truncate(wal, int(size * cut))
    if not keep_shm:
        os.remove(_shard(data_dir, 1) + "-shm")
    found = _read(data_dir)
    if found.warnings:
        assert "write-ahead log" in found.warnings[0]["problem"]
        assert len(found) == PER_WRITER  # the other shard is served
    else:
        assert len(found) == 2 * PER_WRITER


def test_a_real_recording_checks_clean_and_a_repair_keeps_each_event_in_its_run(tmp_path):
    """As a user gets it: `elixirscope run` (its batches carry a run id, indexed too)."""
    script = tmp_path / "prog.py"
    script.write_text("def f(n):\n    return n\n\nfor i in range(3000):\n    f(i)\n")
    data = tmp_path / "data"
    done = subprocess.run([sys.executable, "-m", "elixirscope", "run", "--data-dir", str(data),
                           str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert check_store(data)["ok"]

    from elixirscope.query.runs import select_run

    run = select_run(data).run
    assert run is not None
    lost = _corrupt_chunk(_shard(data, 0), 1)
    assert check_store(data, repair=True)["ok"]
    with EventStore.open(data, readonly=True) as store:
        kept = store.query(run=run.id, limit=None)
    assert len(kept) == 6001 - lost  # 2 events a call and the main thread's announcement


def test_a_busy_shard_is_skipped_once_by_a_long_lived_reader_not_for_good(tmp_path):
    """The StateTracing tracker keeps one reader for the daemon's life: SQLite being busy
    for a moment must not blind it to a shard (it did: a daemon's state went stale)."""
    import sqlite3

    from elixirscope.contracts.trace import decode_batch, encode_batch
    from elixirscope.store import EventStore

    events = [("call", 1, 1000, 1, "c1", 0, "m.f", {"n": "1"}),
              ("return", 2, 1001, 1, "c1", 0, 1, "m.f", 10, "r")]
    frame = encode_batch(node="n", pid=1, program="p", producer="n:1:0", seq=1, sent_ts=0,
                         dropped=0, events=events)
    with EventStore.open(tmp_path) as writer:
        writer.append(decode_batch(frame), frame)
    reader = EventStore.open(tmp_path, readonly=True)
    try:
        assert len(reader.query(limit=None)) == 2
        (shard,) = reader._shards()
        reader._shard_failed(shard, sqlite3.OperationalError("database is locked"))
        assert len(reader.query(limit=None)) == 2  # read again at once
        reader._shard_failed(shard, sqlite3.DatabaseError("database disk image is malformed"))
        found = reader.query(limit=None)
        assert len(found) == 0 and "malformed" in str(found.warnings)  # damaged: skipped
    finally:
        reader.close()



DIES_CREATING = """
import os, sqlite3, sys
from elixirscope.store import EventStore, eventstore

def dies(path, **options):  # the file made, its tables not yet: then the process ends
    sqlite3.connect(path).execute("PRAGMA journal_mode=WAL").close()
    os._exit(0)

eventstore.Shard = dies
EventStore.open(sys.argv[1])
"""


def test_a_writer_killed_while_creating_its_shard_leaves_nothing_called_damaged(
    tmp_path, recorder
):
    """A shard without tables is damage (its write-ahead log was lost) unless its lock says
    its writer ended while creating them: then it never held an event, readers skip it, and
    the next writer to claim it makes it whole."""
    holders = _record(tmp_path, recorder, keep_wal=True)  # shard-000 and shard-001, held
    subprocess.run([sys.executable, "-c", DIES_CREATING, str(tmp_path)], check=True, timeout=60)
    for store in holders:
        store.close()
    path = _shard(tmp_path, 2)
    assert os.path.exists(path)
    with sqlite3.connect(path) as conn:  # a shard without tables ...
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == []
    found = _read(tmp_path)  # ... that nobody calls damaged
    assert found.warnings == [] and len(found) == 2 * PER_WRITER
    assert check_store(tmp_path)["ok"]
    writers = [EventStore.open(tmp_path) for _ in range(3)]  # the third takes shard-002
    try:
        rec = recorder(producer="p2:1:1")
        rec.ret(rec.call("m.f", cid="c2"), "m.f", cid="c2")
        writers[2].append(rec.batch())
    finally:
        for store in writers:
            store.close()
    found = _read(tmp_path)
    assert found.warnings == [] and len(found) == 2 * PER_WRITER + 2
    assert check_store(tmp_path)["ok"] and not (tmp_path / "quarantine").exists()


def test_a_shard_without_tables_whose_lock_says_nothing_is_still_called_damaged(tmp_path, recorder):
    _record(tmp_path, recorder)
    path = _shard(tmp_path, 2)
    sqlite3.connect(path).execute("PRAGMA journal_mode=WAL").close()  # its WAL lost, say
    found = _read(tmp_path)
    [warning] = found.warnings
    assert warning["shard"] == "shard-002.sqlite3" and "tables are missing" in warning["problem"]
