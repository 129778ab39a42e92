"""Nothing acknowledged is lost, nothing lost is uncounted: a host keeps each batch
until a writer has committed it, an ingest restart costs nothing, a resend that
reaches another shard is stored once, and a full store is retried until it has
room while the host's own counters show what it could not keep."""

from __future__ import annotations

import json
import os
import time

from test_ingest_handoff import _frame
from waiting import wait_until

from elixirscope.contracts.trace import decode_batch
from elixirscope.ingest import IngestLoop, WriterLoop
from elixirscope.ingest.stores import open_writer_store
from elixirscope.store import EventStore
from elixirscope.store.full import full_shards
from elixirscope.transport import CreditSender, free_tcp_port


def stored_ns(data) -> list[str]:
    with EventStore.open(data, readonly=True) as store:
        return sorted(e.event.data["n"] for e in store.query(limit=None))


def settle(sender: CreditSender, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while sender.stats.unconfirmed or sender.stats.queued:
        sender.pump(0.01)
        assert time.monotonic() < deadline, f"not settled: {sender.stats}"


def test_a_resent_batch_reaching_another_shard_is_stored_once(tmp_path):
    frame = _frame("host", 1, 5)
    with EventStore.open(tmp_path) as one, EventStore.open(tmp_path) as two:
        assert one.append(decode_batch(frame), frame) == 5
        assert two.append(decode_batch(frame), frame) == 0  # another shard: skipped
        assert two.duplicates_skipped == 1 and one.shard_path != two.shard_path
    assert len(stored_ns(tmp_path)) == 5


def test_killing_the_ingest_with_a_backlog_loses_nothing(tmp_path):
    """The ingest dies with batches taken and not committed; the host sends them
    again to the restarted ingest, and every event is stored exactly once."""
    data = tmp_path / "data"
    endpoint = f"tcp://127.0.0.1:{free_tcp_port()}"
    forward = f"tcp://127.0.0.1:{free_tcp_port()}"
    ingest = IngestLoop(endpoint, forward, window=4)
    ingest.start()
    writer = WriterLoop(forward, lambda: open_writer_store(data))
    writer.start()
    sender = CreditSender(endpoint, resend=True, block_timeout=60.0, hello_interval=0.05)
    batches, per_batch = 40, 20
    try:
        wait_until(lambda: ingest.dispatcher.stats.writers == 1)
        for seq in range(1, 21):
            sender.send(_frame("host", seq, per_batch), per_batch)
        wait_until(lambda: ingest.dispatcher.stats.batches_acked >= 2)
        wait_until(lambda: not writer.ingest_gone())
        ingest.stop()  # its queue and its writer's unacknowledged batches die with it
        # so the writer says no bye into the void (it waited a second for it, which made
        # every daemon's stop a second per writer longer)
        wait_until(writer.ingest_gone)
        writer.stop()
        ingest = IngestLoop(endpoint, forward, window=4)
        ingest.start()
        writer = WriterLoop(forward, lambda: open_writer_store(data))
        writer.start()
        for seq in range(21, batches + 1):
            sender.send(_frame("host", seq, per_batch), per_batch)
        settle(sender)
        stats = sender.stats
        assert stats.receiver_restarts == 1 and stats.dropped == 0 and stats.in_doubt == 0
        assert stored_ns(data) == sorted(str(n) for n in range(per_batch, (batches + 1) * per_batch))
    finally:
        sender.close(0)
        writer.stop()
        ingest.stop()


class Capped:
    """A writer store capped at a few pages: appends fail exactly as on a full disk."""

    def __init__(self, data):
        self.store = open_writer_store(data)
        self.store.cap_shard(200_000)
        self.shard_path = self.store.shard_path

    def append(self, batch, frame=None):
        return self.store.append(batch, frame)

    def close(self):
        self.store.close()


def test_a_full_store_is_retried_reported_and_resumes_and_every_event_is_accounted(tmp_path):
    data = tmp_path / "data"
    forward = f"tcp://127.0.0.1:{free_tcp_port()}"
    ingest = IngestLoop("tcp://127.0.0.1:0", forward, window=4)
    ingest.start()
    capped = {}
    writer = WriterLoop(forward, lambda: capped.setdefault("store", Capped(data)))
    writer.start()
    sender = CreditSender(ingest.endpoint, resend=True, queue_batches=4, block_timeout=0.05)
    per_batch, seq, offered = 200, 0, 0
    try:
        wait_until(lambda: ingest.dispatcher.stats.writers == 1)
        while not writer.stats.store_full:  # fill it
            seq += 1
            sender.send(_frame("host", seq, per_batch), per_batch)
            offered += per_batch
            sender.pump(0.01)
            assert seq < 10_000, "the capped shard never filled"
        wait_until(lambda: full_shards(data))
        # (the writer's "full" answer reaches the ingest's dispatcher a moment later)
        wait_until(lambda: ingest.dispatcher.stats.store_full >= 1)
        assert ingest.dispatcher.stats.store_full == 1
        for _ in range(30):  # the host keeps offering: held back, then dropped - counted
            seq += 1
            sender.send(_frame("host", seq, per_batch), per_batch)
            offered += per_batch
        assert sender.stats.block_timeouts > 0
        assert ingest.dispatcher.stats.batches_retried > 0 and ingest.dispatcher.stats.batches_failed == 0
        capped["store"].store.cap_shard(None)  # room again (as when the disk is freed)
        settle(sender)
        wait_until(lambda: not full_shards(data))
        stats = sender.stats
        assert stats.in_doubt == 0 and writer.stats.store_full == 0
        dropped = stats.events_block_timeouts
        stored = len(stored_ns(data))
        assert stored + dropped == offered
        retried = ingest.dispatcher.stats.batches_retried
        _figures(f"offered {offered:,} events; full after batch {seq - 30}; retried {retried} "
                 f"writes; status said disk full; resumed when room returned; stored {stored:,} + "
                 f"counted drops {dropped:,} (host block timeouts) = offered; uncounted 0")
    finally:
        sender.close(0)
        writer.stop()
        ingest.stop()


def _figures(summary: str) -> None:
    path = os.environ.get("ELIXIRSCOPE_CHAOS_FIGURES")
    if path:
        with open(path, "a") as out:
            out.write(json.dumps({"summary": summary}) + "\n")
