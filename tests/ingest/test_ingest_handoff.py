"""The ingest -> writer hand-off: batches kept until committed, a killed writer loses nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from waiting import wait_until

from elixirscope.contracts.trace import encode_batch
from elixirscope.ingest import IngestLoop, WriterLoop
from elixirscope.ingest.handoff import (
    ACK_FAILED,
    ACK_FULL,
    ACK_MALFORMED,
    ACK_OK,
    Dispatcher,
    HandoffError,
    decode_seq,
    decode_writer_message,
    encode_ack,
    encode_alive,
    encode_bye,
    encode_ready,
    encode_seq,
)
from elixirscope.ingest.stores import open_writer_store
from elixirscope.store import EventStore
from elixirscope.transport import CreditSender, free_tcp_port

REPO = str(Path(__file__).resolve().parents[2])
W1, W2 = b"writer-1", b"writer-2"


# ------------------------------------------------------------------------- the wire


def test_writer_messages_round_trip():
    assert decode_writer_message(encode_ready(4)).capacity == 4
    ack = decode_writer_message(encode_ack(2**40, ACK_FAILED))
    assert (ack.kind, ack.seq, ack.status) == ("ack", 2**40, ACK_FAILED)
    assert decode_writer_message(encode_alive()).kind == "alive"
    assert decode_writer_message(encode_bye()).kind == "bye"
    assert decode_seq(encode_seq(7)) == 7


@pytest.mark.parametrize("data, why", [
    (b"", "unknown writer message"),
    (b"X123", "unknown writer message"),
    (b"A\x00", "malformed b'A' message"),
    (encode_ack(1)[:-1] + b"\x09", "ACK with unknown status 9"),
    (encode_ready(0), "READY needs a capacity of at least 1"),
])
def test_a_bad_writer_message_is_named(data, why):
    with pytest.raises(HandoffError, match=why):
        decode_writer_message(data)


def test_a_bad_seq_frame_is_named():
    with pytest.raises(HandoffError, match="seq is 8 bytes, got 3"):
        decode_seq(b"abc")


# ----------------------------------------------------------------- the bookkeeping


def test_batches_go_to_the_emptiest_writer_and_wait_for_room():
    d = Dispatcher(max_pending=8)
    seqs = [d.take(f"f{n}".encode(), 10) for n in range(5)]
    assert d.assignments() == []  # no writer yet: they wait
    d.receive(W1, encode_ready(2), 0.0)
    d.receive(W2, encode_ready(2), 0.0)
    given = d.assignments()
    assert sorted(seq for _w, seq, _f in given) == seqs[:4]
    assert {w for w, _s, _f in given} == {W1, W2}
    assert d.stats.unacked == 5
    holder = next(w for w, s, _f in given if s == seqs[0])
    d.receive(holder, encode_ack(seqs[0]), 1.0)
    assert d.assignments() == [(holder, seqs[4], b"f4")]
    assert (d.stats.batches_acked, d.stats.events_acked, d.stats.unacked) == (1, 10, 4)


def test_a_lost_writer_s_batches_are_sent_again_first_in_order():
    d = Dispatcher()
    d.receive(W1, encode_ready(3), 0.0)
    first = [d.take(b"a", 1), d.take(b"b", 1), d.take(b"c", 1)]
    d.assignments()
    later = d.take(b"d", 1)
    d.lost(W1)
    d.receive(W2, encode_ready(10), 0.0)
    assert [s for _w, s, _f in d.assignments()] == [*first, later]
    assert (d.stats.writers_lost, d.stats.batches_resent) == (1, 3)


def test_bye_resends_without_counting_a_loss_and_a_late_ack_is_counted():
    d = Dispatcher()
    d.receive(W1, encode_ready(1), 0.0)
    seq = d.take(b"a", 5)
    d.assignments()
    d.receive(W1, encode_bye(), 0.0)
    assert d.stats.writers_lost == 0 and d.stats.batches_resent == 1
    d.receive(W1, encode_ack(seq), 1.0)  # it had written it after all: taken back, counted
    assert d.stats.late_acks == 1 and d.stats.writers == 1


def test_silent_writers_holding_batches_are_given_up_on():
    d = Dispatcher(silence_timeout=10.0)
    d.receive(W1, encode_ready(1), 0.0)
    d.receive(W2, encode_ready(1), 0.0)
    d.take(b"a", 1)
    d.assignments()
    assert len(d.silent_writers(5.0, 5.0)) == 1  # only the one holding a batch
    d.expire(9.0)
    assert d.stats.writers_lost == 0
    d.expire(10.0)
    assert d.stats.writers_lost == 1 and d.stats.writers == 1


def test_failed_writes_are_retried_then_given_up_and_malformed_ones_settled():
    d = Dispatcher(retry_delay=1.0, max_failures=2)
    d.receive(W1, encode_ready(2), 0.0)
    a, b = d.take(b"a", 3, origin="A"), d.take(b"b", 4, origin="B")
    d.assignments(0.0)
    d.receive(W1, encode_ack(a, ACK_FAILED), 0.0)
    d.receive(W1, encode_ack(b, ACK_MALFORMED), 0.0)
    assert d.settled() == ["B"] and d.stats.batches_malformed == 1
    assert d.stats.unacked == 1 and d.assignments(0.5) == []  # waits retry_delay
    assert d.assignments(1.0) == [(W1, a, b"a")] and d.stats.batches_retried == 1
    d.receive(W1, encode_ack(a, ACK_FAILED), 1.0)  # the second failure: given up
    assert (d.stats.batches_failed, d.stats.events_failed) == (1, 3)
    assert d.settled() == ["A"] and d.stats.unacked == 0 and d.assignments(9.0) == []
    d.receive(W1, b"junk", 0.0)
    assert d.stats.bad_messages == 1 and "unknown writer message" in d.stats.last_error


def test_a_full_store_is_retried_until_it_has_room_and_holds_back_new_batches():
    d = Dispatcher(max_pending=2, retry_delay=0.1, max_failures=1)
    d.receive(W1, encode_ready(1), 0.0)
    a = d.take(b"a", 5, origin="A")
    now = 0.0
    for _ in range(5):  # full, full, full...: never given up, never settled
        assert d.assignments(now) == [(W1, a, b"a")]
        d.receive(W1, encode_ack(a, ACK_FULL), now)
        assert d.stats.store_full == 1 and d.settled() == []
        now += 0.1
    d.take(b"b", 1)
    assert not d.can_take()  # the retried batch counts against the queue: backpressure
    assert d.assignments(now)[0][1] == a
    d.receive(W1, encode_ack(a, ACK_OK), now)  # room again
    assert d.stats.store_full == 0 and d.settled() == ["A"] and d.stats.batches_failed == 0


def test_it_stops_taking_at_max_pending():
    d = Dispatcher(max_pending=2)
    d.take(b"a", 1)
    assert d.can_take()
    d.take(b"b", 1)
    assert not d.can_take()
    with pytest.raises(ValueError, match="max_pending >= 1"):
        Dispatcher(max_pending=0)


ops = st.lists(st.one_of(
    st.tuples(st.just("take")),
    st.tuples(st.just("ready"), st.sampled_from([W1, W2, b"w3"]), st.integers(1, 4)),
    st.tuples(st.just("ack"), st.sampled_from([W1, W2, b"w3"]), st.integers(0, 3)),
    st.tuples(st.just("lost"), st.sampled_from([W1, W2, b"w3"])),
    st.tuples(st.just("assign")),
), max_size=80)


@settings(max_examples=200, deadline=None)
@given(ops)
def test_every_batch_is_in_one_place_and_acked_once(script):
    """Whatever writers do, each batch taken is pending, held by one writer or acked:
    never lost, never acked twice; once writers ack everything, all are acked."""
    d = Dispatcher(max_pending=10_000)
    taken: list[int] = []
    acked: list[int] = []
    held: dict[bytes, list[int]] = {}
    for op in script:
        if op[0] == "take":
            taken.append(d.take(b"x", 1))
        elif op[0] == "ready":
            d.receive(op[1], encode_ready(op[2]), 0.0)
        elif op[0] == "ack" and held.get(op[1]):
            seq = held[op[1]].pop(op[2] % len(held[op[1]]))
            before = d.stats.batches_acked
            d.receive(op[1], encode_ack(seq), 0.0)
            if d.stats.batches_acked > before:
                acked.append(seq)
        elif op[0] == "lost":
            d.lost(op[1])
            held.pop(op[1], None)
        elif op[0] == "assign":
            for writer, seq, _frame in d.assignments():
                held.setdefault(writer, []).append(seq)
        holding = [s for seqs in held.values() for s in seqs]
        assert len(acked) == len(set(acked))
        assert len(holding) == len(set(holding)) and not set(holding) & set(acked)
        assert d.stats.unacked == len(taken) - len(acked)
    d.receive(b"finisher", encode_ready(1_000_000), 0.0)
    for writer in list(held):
        d.lost(writer)
    for _writer, seq, _frame in d.assignments():
        d.receive(b"finisher", encode_ack(seq), 0.0)
        acked.append(seq)
    assert sorted(acked) == taken


# ------------------------------------------------------------------ real sockets


SLOW_WRITER = textwrap.dedent("""\
    import sys, threading, time
    from elixirscope.ingest import WriterLoop
    from elixirscope.ingest.stores import open_writer_store

    class Slow:
        def __init__(self, store):
            self.store = store
        def append(self, batch, frame=None):
            time.sleep(0.05)
            return self.store.append(batch, frame)
        def close(self):
            self.store.close()

    loop = WriterLoop(sys.argv[1], lambda: Slow(open_writer_store(sys.argv[2])))
    loop.start()
    print("ready", flush=True)
    threading.Event().wait()
""")


def _frame(producer: str, seq: int, per_batch: int) -> bytes:
    base = seq * per_batch
    events = [("custom", base + n, 1_700_000_000_000_000_000 + base + n, 1, None, 0,
               "tick", {"n": str(base + n)}) for n in range(per_batch)]
    return encode_batch(node="n", pid=1, program="p", producer=producer, seq=seq,
                        sent_ts=0, dropped=0, events=events)


def test_a_writer_killed_mid_stream_loses_nothing(tmp_path):
    data = tmp_path / "data"
    forward = f"tcp://127.0.0.1:{free_tcp_port()}"
    ingest = IngestLoop("tcp://127.0.0.1:0", forward, window=4)
    ingest.start()
    slow = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, forward, str(data)],
                            stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=REPO))
    fast = None
    sender = CreditSender(ingest.endpoint, policy="block", block_timeout=30.0)
    try:
        assert slow.stdout.readline().strip() == "ready"
        wait_until(lambda: ingest.dispatcher.stats.writers == 1)
        batches, per_batch = 60, 50
        sent = threading.Thread(target=lambda: [
            sender.send(_frame("host", seq, per_batch), per_batch)
            for seq in range(1, batches + 1)])
        sent.start()
        # the slow writer alone: it soon holds all it can take, unacknowledged
        wait_until(lambda: ingest.dispatcher.stats.batches_acked >= 3
                   and ingest.dispatcher.stats.unacked >= 4)
        os.kill(slow.pid, signal.SIGKILL)
        slow.wait()
        fast = WriterLoop(forward, lambda: open_writer_store(data))
        fast.start()
        sent.join()
        assert sender.flush(60)
        # (the last batches may still be on their way in: wait for all of them)
        wait_until(lambda: ingest.stats.batches_in == batches
                   and ingest.dispatcher.stats.unacked == 0, timeout=60)
        stats = ingest.dispatcher.stats
        assert stats.writers_lost == 1 and stats.batches_resent >= 1
        assert stats.batches_failed == 0 and ingest.stats.batches_in == batches
        with EventStore.open(data, readonly=True) as store:
            stored = {e.event.data["n"] for e in store.query(limit=None)}
        assert stored == {str(n) for n in range(per_batch, (batches + 1) * per_batch)}
    finally:
        sender.close(0)
        if slow.poll() is None:
            slow.kill()
            slow.wait()
        if fast is not None:
            fast.stop()
        ingest.stop()
