"""EventStore: append, every query filter, get, stats, reopen, bad input."""

from __future__ import annotations

import os

import pytest

import elixirscope.store as store_pkg
from elixirscope.contracts.trace import EventBatch, encode_batch
from elixirscope.store import EventStore, QueryError, StoreError


def _fill(store: EventStore, recorder) -> dict[str, EventBatch]:
    """Two producers: calls in c1/c2, an actor chain in c3, events outside any chain."""
    a = recorder("n1:100:1", "n1", 100)
    top = a.call("app.main", "c1", x="1")
    inner = a.call("app.helpers.fib", "c1", parent=top, n="3")
    a.ret(inner, "app.helpers.fib", "2", "c1", parent=top)
    a.ret(top, "app.main", "None", "c1")
    other = a.call("lib.parse", "c2")
    a.error(other, "lib.parse", "ValueError", "bad", "c2")
    batch_a = a.batch(dropped=2)
    store.append(batch_a)
    b = recorder("n2:200:1", "n2", 200)
    b.add("receive", "m1", "counter", "client", "inc", cid="c3")
    b.add("state", "counter", "handle_call", "inc", "0", "1", cid="c3")
    b.add("send", "m2", "counter", "client", "ok", cid="c3")
    b.add("custom", "tick", {"k": 1}, cid=None)
    batch_b = b.batch()
    store.append(batch_b)
    return {"a": batch_a, "b": batch_b}


def _ids(found) -> list[tuple[str, int]]:
    return [(se.producer, se.event.id) for se in found]


@pytest.fixture
def filled(tmp_path, recorder):
    store = EventStore.open(tmp_path)
    batches = _fill(store, recorder)
    yield store, batches
    store.close()


def test_exports():
    assert set(store_pkg.__all__) == {"EventStore", "QueryError", "StoreError", "StoredEvent",
                                      "prune_idle_shards"}


def test_append_returns_event_count_and_query_returns_all_in_ts_order(filled):
    store, batches = filled
    found = store.query()
    assert len(found) == 10
    assert [se.event.ts for se in found] == sorted(se.event.ts for se in found)
    first = found[0]
    assert (first.node, first.pid, first.program, first.producer) == (
        "n1",
        100,
        "prog.py",
        "n1:100:1",
    )
    assert first.event == batches["a"].events[0]


def test_resent_batch_is_not_stored_twice(filled):
    store, batches = filled
    assert store.append(batches["a"]) == 0
    assert len(store.query()) == 10


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"correlation_id": "c1"}, [("n1:100:1", i) for i in (1, 2, 3, 4)]),
        ({"correlation_id": "nope"}, []),
        ({"function": "app.*"}, [("n1:100:1", i) for i in (1, 2, 3, 4)]),
        ({"function": "*.fib"}, [("n1:100:1", 2), ("n1:100:1", 3)]),
        ({"function": "lib.pars?"}, [("n1:100:1", 5), ("n1:100:1", 6)]),
        ({"actor": "counter"}, [("n2:200:1", i) for i in (1, 2, 3)]),
        ({"actor": "client"}, [("n2:200:1", 3)]),
        ({"type": "exception"}, [("n1:100:1", 6)]),
        ({"type": ["state", "custom"]}, [("n2:200:1", 2), ("n2:200:1", 4)]),
        ({"node": "n2", "type": "custom"}, [("n2:200:1", 4)]),
        ({"pid": 100, "type": "return"}, [("n1:100:1", 3), ("n1:100:1", 4)]),
        ({"producer": "n2:200:1", "correlation_id": "c3", "type": "send"}, [("n2:200:1", 3)]),
        ({"correlation_id": "c1", "type": "exception"}, []),
    ],
)
def test_each_filter_selects_exactly_its_events(filled, filters, expected):
    store, _ = filled
    assert sorted(_ids(store.query(**filters))) == sorted(expected)


def test_since_until_are_inclusive_and_limit_order_pick_ends(filled):
    store, _ = filled
    every = store.query()
    ts = [se.event.ts for se in every]
    window = store.query(since=ts[2], until=ts[5])
    assert [se.event.ts for se in window] == ts[2:6]
    assert _ids(store.query(limit=3)) == _ids(every[:3])
    newest = store.query(limit=3, order="desc")
    assert _ids(newest) == _ids(every[::-1][:3])
    assert _ids(store.query(limit=None, order="desc")) == _ids(every[::-1])


def test_limit_stops_early_across_many_batches(tmp_path, recorder):
    store = EventStore.open(tmp_path)
    rec = recorder()
    for _ in range(50):
        for _ in range(20):
            c = rec.call("m.f", "cx")
            rec.ret(c, "m.f", "1", "cx")
        store.append(rec.batch())
    every = store.query(limit=None)
    assert len(every) == 2000
    assert _ids(store.query(limit=7)) == _ids(every[:7])
    assert _ids(store.query(limit=7, order="desc")) == _ids(every[::-1][:7])
    assert _ids(store.query(correlation_id="cx", limit=30, order="desc")) == _ids(every[::-1][:30])
    store.close()


def test_get_finds_one_event_by_producer_and_id(filled):
    store, batches = filled
    assert store.get("n2:200:1", 2).event == batches["b"].events[1]
    assert store.get("n2:200:1", 99) is None
    assert store.get("nobody", 1) is None


def test_stats_counts_events_batches_drops_and_time_range(filled):
    store, batches = filled
    stats = store.stats()
    every = [ev for b in batches.values() for ev in b.events]
    assert stats["events"] == 10
    assert stats["batches"] == 2
    assert stats["dropped"] == 2
    assert stats["oldest_ts"] == min(ev.ts for ev in every)
    assert stats["newest_ts"] == max(ev.ts for ev in every)
    assert stats["bytes"] > 0 and stats["shards"] == 1


def test_empty_batch_with_drops_is_counted(tmp_path, recorder):
    with EventStore.open(tmp_path) as store:
        assert store.append(recorder().batch(dropped=5)) == 0
        assert store.stats()["dropped"] == 5
        assert store.query() == []


def test_reopen_keeps_everything_and_appends_continue(tmp_path, recorder):
    store = EventStore.open(tmp_path)
    batches = _fill(store, recorder)
    before = store.query(limit=None)
    store.close()
    again = EventStore.open(tmp_path)
    assert again.shard_path == store.shard_path  # the freed shard is taken over
    assert again.query(limit=None) == before
    assert again.append(batches["a"]) == 0  # still known after restart
    rec = recorder("n3:300:1", "n3", 300)
    rec.call("late.fn", "c9")
    assert again.append(rec.batch()) == 1
    assert len(again.query(limit=None)) == 11
    assert again.query(correlation_id="c1") == [
        se for se in before if se.event.correlation_id == "c1"
    ]
    again.close()


def test_two_writers_get_two_shards_and_readers_see_both(tmp_path, recorder):
    one, two = EventStore.open(tmp_path), EventStore.open(tmp_path)
    assert one.shard_path != two.shard_path
    r1, r2 = recorder("p1", "n1", 1), recorder("p2", "n2", 2)
    r1.call("a.f", "c")
    r2.call("b.g", "c")
    one.append(r1.batch())
    two.append(r2.batch())
    reader = EventStore.open(tmp_path, readonly=True)
    assert [se.producer for se in reader.query(correlation_id="c")] == ["p1", "p2"]
    assert reader.stats()["shards"] == 2
    for s in (one, two, reader):
        s.close()


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"correlation_id": 5}, "Expected `str`, got `int` - at `correlation_id`"),
        ({"pid": "100"}, "Expected `int`, got `str` - at `pid`"),
        ({"since": True}, "Expected `int`, got `bool` - at `since`"),
        ({"type": "call2"}, "Unknown event type 'call2' - at `type`; expected one of: attr,"),
        ({"type": ["call", "nope"]}, "Unknown event type 'nope' - at `type[1]`"),
        ({"type": []}, "Expected `str | list[str]` (non-empty), got `list` - at `type`"),
        ({"limit": 0}, "Expected `limit` >= 1 (or None for no limit), got 0"),
        ({"order": "up"}, "Expected `order` to be 'asc' or 'desc', got 'up'"),
        ({"since": 5, "until": 4}, "`since` (5) is after `until` (4)"),
        ({"correlation": "c1"}, "unknown query filter 'correlation'; expected one of:"),
    ],
)
def test_bad_filters_raise_query_error_naming_the_filter(filled, filters, message):
    store, _ = filled
    with pytest.raises(QueryError) as info:
        store.query(**filters)
    assert str(info.value).startswith(message)


def test_append_rejects_what_is_not_a_batch(filled):
    store, _ = filled
    with pytest.raises(
        StoreError, match=r"Expected `EventBatch`, got `dict` - at `append\(batch\)`"
    ):
        store.append({"events": []})


def test_readonly_store_refuses_append_and_prune(filled, recorder):
    store, _ = filled
    reader = EventStore.open(store.root, readonly=True)
    with pytest.raises(StoreError, match="opened read-only"):
        reader.append(recorder().batch())
    with pytest.raises(StoreError, match="opened read-only"):
        reader.prune()
    reader.close()


def test_closed_store_says_so(tmp_path):
    store = EventStore.open(tmp_path)
    store.close()
    store.close()  # idempotent
    with pytest.raises(StoreError, match="is closed"):
        store.query()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_unwritable_data_dir_is_a_clear_error(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(StoreError, match="cannot create the event store under .*locked"):
            EventStore.open(locked / "sub")
    finally:
        locked.chmod(0o700)


def test_data_dir_that_is_a_file_is_a_clear_error(tmp_path):
    afile = tmp_path / "file"
    afile.write_text("x")
    with pytest.raises(
        StoreError,
        match="cannot create the event store under .*file.*expected a writable directory",
    ):
        EventStore.open(afile)


def test_readonly_missing_data_dir_is_a_clear_error(tmp_path):
    with pytest.raises(StoreError, match="no event store at .*missing.*does not exist"):
        EventStore.open(tmp_path / "missing", readonly=True)


def test_readonly_empty_data_dir_is_an_empty_store(tmp_path):
    with EventStore.open(tmp_path, readonly=True) as reader:
        assert reader.query() == []
        assert reader.stats()["events"] == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"retention_max_age_s": 0}, "Expected a positive number of seconds, got 0"),
        ({"retention_max_bytes": "1G"}, "Expected a positive int of bytes, got '1G'"),
        ({"codec": "gzip"}, "unknown chunk codec 'gzip'"),
        ({"synchronous": "OFF"}, "Expected `synchronous` 'NORMAL' or 'FULL', got 'OFF'"),
    ],
)
def test_bad_open_options_are_clear_errors(tmp_path, kwargs, message):
    with pytest.raises(StoreError, match=message.replace("(", r"\(")):
        EventStore.open(tmp_path, **kwargs)


def test_bad_data_dir_type_is_a_clear_error():
    with pytest.raises(
        StoreError, match=r"Expected `str \| os.PathLike`, got `int` - at `data_dir`"
    ):
        EventStore.open(42)


def test_with_or_without_the_frame_the_same_events_come_back(tmp_path, recorder):
    rec = recorder()
    for i in range(40):
        c = rec.call("m.f", f"c{i % 3}", n=str(i))
        rec.add("state", "a", "handle_call", "m", "0", "1", cid=f"c{i % 3}", parent=c)
        rec.ret(c, "m.f", str(i), f"c{i % 3}")
    batch = rec.batch()
    frame = encode_batch(**_header(batch), events=batch.events)
    other = encode_batch(**{**_header(batch), "seq": 99}, events=[])
    results = []
    for name, f in (("none", None), ("frame", frame), ("wrong", other)):
        with EventStore.open(tmp_path / name) as store:
            assert store.append(batch, f) == 120
            results.append([(se.event, se.producer) for se in store.query(limit=None)])
            assert len(store.query(correlation_id="c1", limit=None)) == 39
    assert results[0] == results[1] == results[2]
    assert [ev for ev, _ in results[0]] == batch.events


def _header(batch):
    return dict(
        node=batch.node, pid=batch.pid, program=batch.program, producer=batch.producer,
        seq=batch.seq, sent_ts=batch.sent_ts, dropped=batch.dropped,
    )  # fmt: skip


def test_append_many_commits_several_batches_and_skips_repeats(tmp_path, recorder):
    rec = recorder()
    batches = []
    for i in range(3):
        rec.call("m.f", f"c{i}")
        batches.append(rec.batch())
    with EventStore.open(tmp_path) as store:
        assert store.append_many([batches[0], (batches[1], None), batches[1], batches[2]]) == [
            1, 1, 0, 1,
        ]  # fmt: skip
        assert store.append_many([batches[2]]) == [0]
        assert [se.event.correlation_id for se in store.query()] == ["c0", "c1", "c2"]
        with pytest.raises(StoreError, match=r"got `str` - at `append_many\(batches\[1\]\)`"):
            store.append_many([batches[0], "x"])
        with pytest.raises(
            StoreError, match=r"Expected `bytes \| None`, got `int` - at `append\(frame\)`"
        ):
            store.append(batches[0], 5)


def test_a_corrupt_shard_is_skipped_with_a_warning_and_a_writer_starts_afresh(tmp_path):
    (tmp_path / "events").mkdir()
    (tmp_path / "events" / "shard-000.sqlite3").write_bytes(b"not a database" * 100)
    with EventStore.open(tmp_path, readonly=True) as reader:
        found = reader.query()
        assert found == []
        [warning] = found.warnings
        assert warning["shard"] == "shard-000.sqlite3" and "not a database" in warning["problem"]
    with EventStore.open(tmp_path) as writer:  # quarantines it and writes a fresh shard
        assert writer.shard_path.endswith("shard-000.sqlite3")
        assert writer.stats()["shards_quarantined"] == 1
    [moved] = (tmp_path / "quarantine").iterdir()
    assert (moved / "shard-000.sqlite3").read_bytes() == b"not a database" * 100


def test_a_shard_being_created_is_skipped_until_it_has_its_schema(tmp_path):
    import sqlite3

    (tmp_path / "events").mkdir()
    sqlite3.connect(tmp_path / "events" / "shard-000.sqlite3").execute(
        "CREATE TABLE x(y)"
    ).connection.close()
    with EventStore.open(tmp_path, readonly=True) as reader:
        assert reader.query() == [] and reader.stats()["shards"] == 0
