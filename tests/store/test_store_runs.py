"""Runs in the store: every batch's run is indexed and totalled; run records are files
written atomically; shards from before runs keep working."""

from __future__ import annotations

import sqlite3
import time

import msgspec
import pytest

from elixirscope.contracts.runs import start_record
from elixirscope.contracts.trace import EventBatch, FunctionEntry, FunctionError
from elixirscope.store import EventStore, StoreError
from elixirscope.store.runs import read_runs, write_run

T0 = time.time_ns()


def _batch(run: str, seq: int, n: int, *, producer: str = "h:1:1", dropped: int = 0,
           errors: int = 0) -> EventBatch:
    events: list = [FunctionEntry(id=seq * 1000 + i, ts=T0 + seq * 1000 + i, thread=1,
                                  correlation_id=f"c{seq}", parent_id=0, function="m.f")
                    for i in range(n)]
    events += [FunctionError(id=seq * 1000 + n + i, ts=T0 + seq * 1000 + n + i, thread=1,
                             correlation_id=f"c{seq}", parent_id=0, call_id=1, function="m.f",
                             duration_ns=1, exc_type="E", message="m") for i in range(errors)]
    return EventBatch(node="h", pid=1, program="p", producer=producer, seq=seq, sent_ts=T0,
                      dropped=dropped, events=events, run=run)


def test_queries_by_run_and_totals_per_run(tmp_path):
    a, b = "a" * 32, "b" * 32
    with EventStore.open(tmp_path) as store:
        store.append(_batch(a, 1, 5, dropped=2, errors=1))
        store.append(_batch(a, 2, 0, dropped=3))  # only a drop count: no events, no chunk
        store.append(_batch(b, 3, 4, producer="h:2:2"))
        store.append(_batch(a, 4, 2, producer="h:3:3"))
    with EventStore.open(tmp_path, readonly=True) as store:
        assert len(store.query(run=a, limit=None)) == 8
        assert {se.producer for se in store.query(run=b, limit=None)} == {"h:2:2"}
        assert store.query(run="c" * 32) == []
        totals = store.run_totals()
    assert totals[a]["events"] == 8 and totals[a]["dropped"] == 5
    assert totals[a]["exceptions"] == 1 and totals[a]["producers"] == {"h:1:1", "h:3:3"}
    assert totals[b]["events"] == 4 and totals[b]["first_ts"] == T0 + 3000


def test_a_cancellation_is_not_counted_among_a_runs_exceptions(tmp_path):
    """A coroutine its owner stopped (asyncio's CancelledError) did not fail: summary says
    Cancelled apart from its Exceptions, and runs does not count it."""
    run = "e" * 32
    batch = _batch(run, 1, 1, errors=2)
    stopped = msgspec.structs.replace(batch.events[-1], exc_type="asyncio.exceptions.CancelledError")
    with EventStore.open(tmp_path) as store:
        store.append(msgspec.structs.replace(batch, events=[*batch.events[:-1], stopped]))
    with EventStore.open(tmp_path, readonly=True) as store:
        assert store.run_totals()[run]["exceptions"] == 1


def test_a_batch_is_found_by_producer_and_seq_in_any_shard(tmp_path):
    with EventStore.open(tmp_path) as one:
        one.append(_batch("a" * 32, 1, 2))
    with EventStore.open(tmp_path) as two:  # a second writer: its own shard
        two.append(_batch("a" * 32, 2, 2))
    with EventStore.open(tmp_path, readonly=True) as store:
        assert store.holds_batch("h:1:1", 1) and store.holds_batch("h:1:1", 2)
        assert not store.holds_batch("h:1:1", 3) and not store.holds_batch("h:9:9", 1)


def test_run_records_are_replaced_whole_and_checked(tmp_path):
    record = start_record("d" * 32, command=["prog.py"], program="prog.py", node="h")
    write_run(tmp_path, record)
    write_run(tmp_path, {**record, "exit_status": 3})
    assert read_runs(tmp_path)["d" * 32]["exit_status"] == 3
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["d" * 32 + ".json"]  # no temp left
    with pytest.raises(StoreError, match="run id"):
        write_run(tmp_path, {**record, "id": "../escape"})
    with pytest.raises(StoreError, match="unknown run record field 'colour'"):
        write_run(tmp_path, {**record, "colour": "red"})
    with pytest.raises(StoreError, match=r"at `in_doubt\[1\]`"):
        write_run(tmp_path, {**record, "in_doubt": [["h:1:1", 2, 1000], ["h:1:1", -1, 5]]})
    with pytest.raises(StoreError, match="Expected `in_doubt` a list"):
        write_run(tmp_path, {**record, "in_doubt": "h:1:1"})
    write_run(tmp_path, {**record, "in_doubt": [["h:1:1", 2, 1000]]})
    (tmp_path / "runs" / "broken.json").write_text("{not json")
    assert list(read_runs(tmp_path)) == ["d" * 32]  # an unreadable file is skipped


def test_a_shard_from_before_runs_is_read_and_then_upgraded(tmp_path):
    with EventStore.open(tmp_path) as store:
        store.append(_batch("", 1, 3))
        path = store.shard_path
    conn = sqlite3.connect(path)  # the columns a shard written before runs does not have
    conn.execute("ALTER TABLE batch DROP COLUMN run")
    conn.execute("ALTER TABLE batch DROP COLUMN errors")
    conn.commit()
    conn.close()
    with EventStore.open(tmp_path, readonly=True) as store:
        assert store.run_totals() == {} and len(store.query(limit=None)) == 3
    with EventStore.open(tmp_path) as store:  # a writer takes the shard over and upgrades it
        assert store.shard_path == path
        store.append(_batch("e" * 32, 2, 2))
        totals = store.run_totals()
    assert totals["e" * 32]["events"] == 2 and totals[""]["events"] == 3


def test_run_totals_kept_between_reads_follow_appends_and_prunes(tmp_path):
    """The totals a process keeps (added to as batches arrive, started afresh after a
    prune) equal those read from every batch, at every step."""
    a, b = "a" * 32, "b" * 32
    appended: list[EventBatch] = []

    def expected() -> dict:
        out: dict = {}
        for batch in appended:
            total = out.setdefault(batch.run, {"events": 0, "dropped": 0, "producers": set()})
            total["events"] += len(batch.events)
            total["dropped"] += batch.dropped
            total["producers"].add(batch.producer)
        return out

    def seen(store: EventStore) -> dict:
        return {
            run: {k: t[k] for k in ("events", "dropped", "producers")}
            for run, t in store.run_totals().items()
        }

    with EventStore.open(tmp_path) as writer, EventStore.open(tmp_path, readonly=True) as reader:
        seq = 0
        for step in range(4):
            for run, producer in ((a, "h:1:1"), (b, f"h:{step}:2"), (a, "h:3:3")):
                seq += 1
                appended.append(_batch(run, seq, 1 + seq % 3, producer=producer, dropped=seq))
                writer.append(appended[-1])
            assert seen(reader) == seen(writer) == expected()
        writer.retention_max_age_s = 1e-9
        writer.prune()  # every batch is older than that
        appended.clear()
        assert seen(reader) == seen(writer) == expected() == {}
        appended.append(_batch(b, seq + 1, 2, producer="h:9:9"))
        writer.append(appended[-1])
        assert seen(reader) == expected()
