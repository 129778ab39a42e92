"""Crash safety and concurrency with real processes: kill -9 a writer, read while it writes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading

from waiting import wait_until

from elixirscope.store import EventStore

# Writes batches of 50 events forever (correlation id "b<seq>"), printing each
# batch's seq once append() returned, i.e. once the batch is acknowledged.
WRITER = textwrap.dedent(
    """
    import sys
    from elixirscope.contracts.trace import decode_batch, encode_batch
    from elixirscope.store import EventStore

    store = EventStore.open(sys.argv[1])
    producer = sys.argv[2]
    eid = 0
    seq = 0
    print("ready", flush=True)
    while True:
        seq += 1
        events = []
        for _ in range(50):
            eid += 1
            events.append(("call", eid, 1_000_000 + eid, 1, f"b{seq}", 0, "w.f", {"i": str(eid)}))
        frame = encode_batch(node="w", pid=1, program="writer", producer=producer, seq=seq,
                             sent_ts=eid, dropped=0, events=events)
        store.append(decode_batch(frame), frame)
        print(seq, flush=True)
    """
)


class Writer:
    """A writer subprocess and the seqs it acknowledged, read by a thread."""

    def __init__(self, data_dir, producer: str = "w:1:1") -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(data_dir), producer],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.acked: list[int] = []
        self.ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            if line.strip() == "ready":
                self.ready.set()
            elif line.strip():
                self.acked.append(int(line))

    def kill(self) -> list[int]:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self._reader.join()
        return list(self.acked)


def _batches_seen(store: EventStore) -> dict[str, int]:
    counts: dict[str, int] = {}
    for se in store.query(limit=None):
        counts[se.event.correlation_id] = counts.get(se.event.correlation_id, 0) + 1
    return counts


def test_kill_9_of_a_writer_loses_no_acknowledged_batch(tmp_path):
    writer = Writer(tmp_path)
    wait_until(lambda: len(writer.acked) >= 200)
    acked = writer.kill()
    with EventStore.open(tmp_path, readonly=True) as reader:
        seen = _batches_seen(reader)
    assert acked, "the writer acknowledged nothing"
    missing = [seq for seq in acked if seen.get(f"b{seq}") != 50]
    assert missing == []
    # whatever else is there (a batch committed but not yet printed) is whole
    assert all(count == 50 for count in seen.values())


def test_a_restarted_writer_takes_the_dead_ones_shard_and_keeps_its_data(tmp_path):
    first = Writer(tmp_path, "w:1:1")
    wait_until(lambda: len(first.acked) >= 20)
    acked = first.kill()
    with EventStore.open(tmp_path) as store:  # flock released by the kernel on kill
        assert store.shard_path.endswith("shard-000.sqlite3")
        seen = _batches_seen(store)
        assert all(seen.get(f"b{seq}") == 50 for seq in acked)


def test_reader_process_sees_only_whole_batches_while_a_writer_writes(tmp_path):
    writer = Writer(tmp_path)
    writer.ready.wait(30)
    reader = EventStore.open(tmp_path, readonly=True)
    snapshots: list[int] = []

    def read_once() -> bool:
        acked_before = len(writer.acked)
        seen = _batches_seen(reader)
        assert all(count == 50 for count in seen.values()), "a reader saw a partial batch"
        # everything acknowledged before the read started is visible
        assert all(f"b{seq}" in seen for seq in writer.acked[:acked_before])
        snapshots.append(len(seen))
        return len(snapshots) >= 20 and snapshots[-1] > snapshots[0]

    try:
        wait_until(read_once, interval=0.001)  # reads until it has watched the writer progress
    finally:
        writer.kill()
        reader.close()
    assert snapshots == sorted(snapshots)


def test_a_pool_of_writer_processes_writes_one_shard_each(tmp_path):
    writers = [Writer(tmp_path, "w:1:1"), Writer(tmp_path, "w:2:1")]
    wait_until(lambda: all(len(w.acked) >= 50 for w in writers))
    acked = [w.kill() for w in writers]
    with EventStore.open(tmp_path, readonly=True) as reader:
        assert reader.stats()["shards"] == 2
        for producer, seqs in zip(("w:1:1", "w:2:1"), acked, strict=True):
            found = reader.query(producer=producer, limit=None)
            per_batch: dict[str, int] = {}
            for se in found:
                per_batch[se.event.correlation_id] = per_batch.get(se.event.correlation_id, 0) + 1
            assert all(per_batch.get(f"b{seq}") == 50 for seq in seqs)
            ids = [se.event.id for se in found]
            assert ids == sorted(ids)


# Appends one batch (of 50 events, as WRITER) per line read, printing "ok" once stored.
STEPPED_WRITER = textwrap.dedent(
    """
    import sys
    from elixirscope.contracts.trace import decode_batch, encode_batch
    from elixirscope.store import EventStore

    store = EventStore.open(sys.argv[1])
    print(store.shard_path, flush=True)
    for seq, _line in enumerate(sys.stdin, 1):
        events = [("call", seq * 100 + i, seq * 100 + i, 1, f"b{seq}", 0, "w.f", {"i": "x" * 900})
                  for i in range(50)]
        frame = encode_batch(node="w", pid=1, program="writer", producer="w:1:1", seq=seq,
                             sent_ts=seq, dropped=0, events=events)
        store.append(decode_batch(frame), frame)
        print("ok", flush=True)
    """
)


def test_a_commit_between_reading_the_wal_and_its_index_is_not_damage(tmp_path):
    """The reader of the test above once skipped the writer's shard as damaged: it read
    the WAL's size, the writer committed, then it read the index's larger count of
    committed pages - "cut short" - and missed every acknowledged batch."""
    from elixirscope.store.damage import _shm_header, wal_damage, wal_verdict

    proc = subprocess.Popen(
        [sys.executable, "-c", STEPPED_WRITER, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        path = proc.stdout.readline().strip()

        def append() -> None:
            proc.stdin.write("\n")
            proc.stdin.flush()
            assert proc.stdout.readline().strip() == "ok"

        append()
        with open(path + "-wal", "rb") as f:  # this process holds no connection to it
            head, size = f.read(32), os.fstat(f.fileno()).st_size
        assert wal_verdict(path, head, size, _shm_header(path)) is None
        append()  # commits between the WAL read and the index read
        stale = wal_verdict(path, head, size, _shm_header(path))
        assert stale is not None and "cut short" in stale  # what the one-pass read said
        assert wal_damage(path) is None  # reads the index around the WAL: sees it whole
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
