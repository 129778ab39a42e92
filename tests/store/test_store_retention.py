"""Retention: by age, by size, and automatically every N appends."""

from __future__ import annotations

import time

import pytest

from elixirscope.contracts.trace import decode_batch, encode_batch
from elixirscope.store import EventStore, QueryError, prune_idle_shards


def _batch(seq: int, ts: int, n: int = 100, producer: str = "p") -> object:
    events = [
        ("call", seq * 1000 + i, ts + i, 1, f"c{seq}", 0, "m.f", {"payload": f"{seq}-{i}" * 8})
        for i in range(n)
    ]
    frame = encode_batch(
        node="n", pid=1, program="x", producer=producer, seq=seq, sent_ts=ts + n,
        dropped=0, events=events,
    )  # fmt: skip
    return decode_batch(frame)


def test_prune_by_age_deletes_batches_older_than_the_limit(tmp_path):
    now = time.time_ns()
    hour = 3600 * 10**9
    store = EventStore.open(tmp_path, retention_max_age_s=1800)
    store.append(_batch(1, now - 3 * hour))
    store.append(_batch(2, now - 2 * hour))
    store.append(_batch(3, now - 60 * 10**9))
    result = store.prune()
    assert (result["batches_deleted"], result["events_deleted"]) == (2, 200)
    assert {se.event.correlation_id for se in store.query(limit=None)} == {"c3"}
    assert store.stats()["batches"] == 1
    assert store.get("p", 1001) is None and store.get("p", 3001) is not None
    store.close()


def test_prune_by_size_keeps_the_newest_within_the_bound(tmp_path):
    store = EventStore.open(tmp_path, prune_every=0)
    t = time.time_ns()
    for seq in range(1, 301):
        store.append(_batch(seq, t + seq * 10**6))
    full = store.prune()["bytes_used"] if store.retention_max_bytes else None
    assert full is None  # no retention configured: prune() changes nothing
    used_before = store._writer.used_bytes()
    store.retention_max_bytes = used_before // 2
    result = store.prune()
    assert result["batches_deleted"] > 0
    assert result["bytes_used"] <= used_before // 2
    kept = {se.event.correlation_id for se in store.query(limit=None)}
    assert "c300" in kept and "c1" not in kept
    kept_seqs = sorted(int(c[1:]) for c in kept)
    assert kept_seqs == list(range(kept_seqs[0], 301)), "pruning must remove the oldest first"
    store.close()


def test_writer_prunes_by_itself_every_n_appends(tmp_path):
    now = time.time_ns()
    store = EventStore.open(tmp_path, retention_max_age_s=60, prune_every=5)
    for seq in range(1, 5):
        store.append(_batch(seq, now - 3600 * 10**9))
    assert store.stats()["batches"] == 4
    store.append(_batch(5, now))  # the 5th append triggers prune
    assert store.stats()["batches"] == 1
    assert {se.event.correlation_id for se in store.query()} == {"c5"}
    store.close()


def test_pruned_keys_disappear_from_the_index(tmp_path):
    now = time.time_ns()
    store = EventStore.open(tmp_path, retention_max_age_s=60)
    store.append(_batch(1, now - 3600 * 10**9))
    store.append(_batch(2, now))
    store.prune()
    assert store.query(correlation_id="c1") == []
    assert len(store.query(correlation_id="c2")) == 100
    keys = {v for (v,) in store._writer.conn.execute("SELECT value FROM key WHERE kind='c'")}
    assert keys == {"c2"}
    store.close()


def test_idle_shards_are_pruned_and_held_ones_left_to_their_writer(tmp_path):
    now = time.time_ns()
    hour = 3600 * 10**9
    idle = EventStore.open(tmp_path)  # a run that has finished: its shard is free
    idle.append(_batch(1, now - 3 * hour, producer="idle"))
    idle.append(_batch(2, now - 60 * 10**9, producer="idle"))
    held = EventStore.open(tmp_path)  # a live writer: only it prunes its shard
    held.append(_batch(1, now - 3 * hour, producer="held"))
    idle.close()
    assert prune_idle_shards(tmp_path) == {"shards": 0, "batches_deleted": 0,
                                           "events_deleted": 0}  # no retention set
    result = prune_idle_shards(tmp_path, retention_max_age_s=1800)
    assert result == {"shards": 1, "batches_deleted": 1, "events_deleted": 100}
    with EventStore.open(tmp_path, readonly=True) as reader:
        left = {(se.producer, se.event.correlation_id) for se in reader.query(limit=None)}
    assert left == {("idle", "c2"), ("held", "c1")}
    held.close()
    assert prune_idle_shards(tmp_path, retention_max_age_s=1800)["batches_deleted"] == 1
    with pytest.raises(QueryError, match="retention"):
        prune_idle_shards(tmp_path, retention_max_age_s=-1)
