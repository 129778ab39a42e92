"""The shipper: ring -> encoded batches -> sink (in-process and over real ZeroMQ)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from waiting import wait_until

from elixirscope.capture.hlc import PyHLC
from elixirscope.capture.ring import PyRingBuffer
from elixirscope.capture.shipper import CallableSink, Shipper, ZmqSink
from elixirscope.contracts.trace import CustomEvent, decode_batch
from elixirscope.transport import CreditReceiver, free_tcp_port

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def make_recorder(capacity: int = 1 << 16, policy: str = "drop_oldest") -> SimpleNamespace:
    """What the shipper needs of a recorder: a real ring and a real HLC."""
    return SimpleNamespace(ring=PyRingBuffer(capacity, policy), clock=PyHLC())


def event(n: int, producer: int = 0) -> tuple:
    """A CustomEvent in the contract's tuple layout."""
    return ("custom", n, 1_000 + n, producer, None, 0, "tick", {"n": n, "p": producer})


class Collect:
    """A CallableSink target keeping every decoded batch."""

    def __init__(self) -> None:
        self.batches = []
        self.lock = threading.Lock()

    def __call__(self, frame: bytes, event_count: int) -> None:
        batch = decode_batch(frame)
        assert len(batch.events) == event_count
        with self.lock:
            self.batches.append(batch)

    @property
    def events(self) -> list:
        return [e for b in self.batches for e in b.events]


@pytest.fixture
def shippers():
    made: list[Shipper] = []
    yield made
    for s in made:
        s.close(timeout=2.0)


def test_batches_carry_identity_sequence_and_every_event_in_order(shippers):
    rec, out = make_recorder(), Collect()
    for n in range(1, 2501):
        rec.ring.append(event(n))
    shipper = Shipper(rec, CallableSink(out), batch_size=1000, node="n1", program="prog")
    shippers.append(shipper)
    shipper.start()
    assert shipper.flush(timeout=30)
    assert [len(b.events) for b in out.batches] == [1000, 1000, 500]
    assert [b.seq for b in out.batches] == [1, 2, 3]
    assert {(b.node, b.pid, b.program, b.producer) for b in out.batches} == {
        ("n1", os.getpid(), "prog", shipper.producer)
    }
    assert all(b.dropped == 0 for b in out.batches)
    assert [e.id for e in out.events] == list(range(1, 2501))
    assert out.events[0] == CustomEvent(1, 1001, 0, None, 0, "tick", {"n": 1, "p": 0})
    stats = shipper.stats()
    assert stats["events_shipped"] == 2500 and stats["batches_shipped"] == 3
    assert stats["events_dropped"] == 0


def test_an_event_recorded_after_the_last_drain_ships_while_time_is_left():
    """Another thread may record once the exit's drain found the ring empty (a daemon
    thread still running at exit): shipped before the deadline, not counted as dropped."""

    class LateRecording(Shipper):
        def _drain_while_shipping(self, deadline: float, patience: float) -> float:
            left = super()._drain_while_shipping(deadline, patience)
            self.recorder.ring.append(event(99))  # after the drain, before the lock
            return left

    rec, out = make_recorder(), Collect()
    rec.ring.append(event(1))
    shipper = LateRecording(rec, CallableSink(out), batch_size=1000).start()
    shipper.close(timeout=10)
    assert [e.id for e in out.events] == [1, 99]
    assert shipper.stats()["dropped_on_close"] == 0


def test_ring_drops_are_reported_in_the_next_batch_and_in_stats(shippers):
    rec, out = make_recorder(capacity=16, policy="drop_newest"), Collect()
    for n in range(1, 41):
        rec.ring.append(event(n))
    shipper = Shipper(rec, CallableSink(out), batch_size=100)
    shippers.append(shipper)
    assert shipper.flush(timeout=30)  # works without the thread too
    assert [e.id for e in out.events] == list(range(1, 17))
    assert sum(b.dropped for b in out.batches) == 24
    assert shipper.stats()["events_dropped"] == 24
    rec.ring.append(event(99))
    assert shipper.flush(timeout=30)
    assert out.batches[-1].dropped == 0  # only drops since the previous batch


def test_unencodable_event_is_counted_and_the_rest_of_the_batch_ships(shippers):
    rec, out = make_recorder(), Collect()
    rec.ring.append(event(1))
    # the ring keeps records encoded: one msgpack cannot carry is refused, counted
    assert rec.ring.append(("custom", 2, 5, 0, None, 0, "bad", {"x": object()})) is False
    rec.ring.append(event(3))
    shipper = Shipper(rec, CallableSink(out))
    shippers.append(shipper)
    assert shipper.flush(timeout=30)
    assert [e.id for e in out.events] == [1, 3]
    assert out.batches[0].dropped == 1
    assert shipper.stats()["ring"]["unencodable"] == 1
    assert shipper.stats()["events_dropped"] == 1


def test_a_failing_sink_counts_its_drops_and_the_shipper_carries_on(shippers):
    rec = make_recorder()
    calls = []

    def flaky(frame: bytes, count: int) -> None:
        calls.append(count)
        if len(calls) == 1:
            raise OSError("disk full")

    shipper = Shipper(rec, CallableSink(flaky), batch_size=10).start()
    shippers.append(shipper)
    for n in range(20):
        rec.ring.append(event(n))
    assert shipper.flush(timeout=30)
    stats = shipper.stats()
    assert stats["events_refused"] == 10 and stats["events_shipped"] == 10
    assert stats["sink"]["last_error"] == "OSError: disk full"
    assert stats["events_dropped"] == 10


@settings(max_examples=25, deadline=None)
@given(
    producers=st.integers(min_value=1, max_value=4),
    per_producer=st.integers(min_value=0, max_value=400),
    batch_size=st.integers(min_value=1, max_value=300),
)
def test_no_loss_and_per_producer_order_within_capacity(producers, per_producer, batch_size):
    rec, out = make_recorder(capacity=1 << 12), Collect()
    shipper = Shipper(
        rec,
        CallableSink(out),
        batch_size=batch_size,
        flush_interval_s=0.001,
        register_atexit=False,
    ).start()
    try:

        def produce(p: int) -> None:
            for n in range(per_producer):
                rec.ring.append(event(n, p))

        threads = [threading.Thread(target=produce, args=(p,)) for p in range(producers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert shipper.flush(timeout=30)
    finally:
        shipper.close(timeout=5)
    for p in range(producers):
        assert [e.id for e in out.events if e.thread == p] == list(range(per_producer))
    assert shipper.stats()["events_dropped"] == 0


def test_bad_arguments_name_what_is_wrong():
    rec = make_recorder()
    sink = CallableSink(lambda f, n: None)
    with pytest.raises(ValueError, match=r"Expected `batch_size` an int >= 1, got 0 - at Shipper"):
        Shipper(rec, sink, batch_size=0)
    with pytest.raises(ValueError, match=r"Expected `flush_interval_s` seconds > 0, got -1"):
        Shipper(rec, sink, flush_interval_s=-1)
    with pytest.raises(TypeError, match=r"Expected `node` a non-empty str or None, got 3"):
        Shipper(rec, sink, node=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"Expected a callable fn\(frame, event_count\), got 5"):
        CallableSink(5)  # type: ignore[arg-type]


def test_a_forked_child_inherits_an_inert_shipper(shippers):
    rec, out = make_recorder(), Collect()
    shipper = Shipper(rec, CallableSink(out)).start()
    shippers.append(shipper)
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report and leave at once, without atexit
        try:
            rec.ring.append(event(1))
            ok = shipper.forked and not shipper.running and shipper.flush(1) is False
            shipper.close()
            os.write(wfd, b"ok" if ok and not out.batches else b"bad")
        finally:
            os._exit(0)
    os.close(wfd)
    with os.fdopen(rfd, "rb") as r:
        assert r.read() == b"ok"
    os.waitpid(pid, 0)
    assert not shipper.forked and shipper.running


# --------------------------------------------------------------------------- ZeroMQ


class Consumer:
    """A CreditReceiver in its own thread, decoding every batch it takes."""

    def __init__(self, window: int = 8, endpoint: str = "tcp://127.0.0.1:0") -> None:
        self.receiver = CreditReceiver(endpoint, window=window)
        self.endpoint = self.receiver.endpoint
        self.batches: list = []
        self.running = threading.Event()
        self.running.set()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            if not self.running.is_set():
                self.running.wait(0.05)
                continue
            batch = self.receiver.recv(timeout=0.05)
            if batch is not None:
                self.batches.append(decode_batch(batch.payload))

    @property
    def events(self) -> list:
        return [e for b in self.batches for e in b.events]

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.receiver.close()


@pytest.fixture
def consumer():
    c = Consumer()
    yield c
    c.close()


def test_zeromq_nothing_lost_within_capacity(consumer, shippers):
    rec = make_recorder(capacity=1 << 17)
    shipper = Shipper(rec, ZmqSink(consumer.endpoint, policy="block"), batch_size=1000).start()
    shippers.append(shipper)

    def produce(p: int) -> None:
        for n in range(20_000):
            rec.ring.append(event(n, p))

    threads = [threading.Thread(target=produce, args=(p,)) for p in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert shipper.flush(timeout=60)
    wait_until(lambda: len(consumer.events) == 60_000)
    for p in range(3):
        assert [e.id for e in consumer.events if e.thread == p] == list(range(20_000))
    assert [b.seq for b in consumer.batches] == list(range(1, len(consumer.batches) + 1))
    stats = shipper.stats()
    assert stats["events_dropped"] == 0 and stats["events_shipped"] == 60_000
    assert stats["sink"]["events_sent"] == 60_000


def test_zeromq_slow_receiver_drops_are_counted_not_silent(shippers):
    consumer = Consumer(window=1)
    try:
        consumer.running.clear()  # the receiver takes nothing for now
        rec = make_recorder(capacity=1 << 15)
        sink = ZmqSink(consumer.endpoint, policy="drop_newest", queue_batches=2)
        shipper = Shipper(rec, sink, batch_size=100)
        shippers.append(shipper)
        for n in range(3000):
            rec.ring.append(event(n))
        shipper.flush(timeout=2)  # 30 batches offered; most cannot be taken
        consumer.running.set()
        shipper.flush(timeout=30)
        sink_stats = sink.stats()
        wait_until(lambda: len(consumer.events) == sink_stats["events_sent"])
        assert sink_stats["events_dropped_newest"] > 0
        assert shipper.stats()["events_dropped"] == sink_stats["events_dropped_newest"]
        assert len(consumer.events) + shipper.stats()["events_dropped"] == 3000
        got = [e.id for e in consumer.events]
        assert got == sorted(got)
    finally:
        consumer.close()


def test_zeromq_absent_receiver_everything_is_counted_on_close():
    rec = make_recorder()
    endpoint = f"tcp://127.0.0.1:{free_tcp_port()}"
    sink = ZmqSink(endpoint, policy="block", queue_batches=2, block_timeout=0.2)
    shipper = Shipper(rec, sink, batch_size=50, exit_timeout_s=0.5, register_atexit=False)
    for n in range(500):
        rec.ring.append(event(n))
    assert shipper.flush(timeout=0.3) is False
    shipper.close()
    stats = shipper.stats()
    assert stats["events_shipped"] + stats["events_refused"] + stats["dropped_on_close"] == 500
    assert stats["events_dropped"] == 500  # nothing reached a receiver, all of it counted
    assert stats["ring"]["size"] == 0


def test_closing_waits_as_long_as_batches_keep_shipping():
    """The exit deadline is a time without progress: a sink slower than it in all (a loaded
    machine, a big spool) but shipping all along loses nothing."""
    rec = make_recorder()
    shipped: list[int] = []

    def slow(frame: bytes, count: int) -> None:
        time.sleep(0.02)  # 50 batches: 1 s in all, five times the exit deadline
        shipped.append(count)

    shipper = Shipper(rec, CallableSink(slow), batch_size=10, exit_timeout_s=0.2,
                      register_atexit=False)
    for n in range(500):
        rec.ring.append(event(n))
    shipper.close()
    assert sum(shipped) == 500 and len(shipped) == 50
    assert shipper.stats()["events_dropped"] == 0


# --------------------------------------------------------------------------- at exit

CHILD = textwrap.dedent(
    """
    import atexit, sys
    from types import SimpleNamespace
    from elixirscope.capture.hlc import PyHLC
    from elixirscope.capture.ring import PyRingBuffer
    from elixirscope.capture.shipper import Shipper, ZmqSink

    endpoint, count, exit_timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    made = []

    def report():  # registered first, so it runs last (atexit is LIFO)
        s = made[0].stats()
        print("dropped", s["events_dropped"], "in_ring", s["ring"]["size"], flush=True)

    atexit.register(report)
    rec = SimpleNamespace(ring=PyRingBuffer(1 << 17, "drop_oldest"), clock=PyHLC())
    sink = ZmqSink(endpoint, policy="block", queue_batches=4, block_timeout=0.2)
    made.append(Shipper(rec, sink, batch_size=1000, exit_timeout_s=exit_timeout).start())
    for n in range(count):
        rec.ring.append(("custom", n + 1, n + 1, 0, None, 0, "tick", {}))
    print("recorded", count, flush=True)
    # no flush, no close: the atexit handler must ship everything
    """
)


def run_child(endpoint: str, count: int, exit_timeout: float) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=REPO)
    # timeout is a hang guard, not a performance limit
    return subprocess.run(
        [sys.executable, "-c", CHILD, endpoint, str(count), str(exit_timeout)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=REPO,
    )


def test_a_normal_exit_loses_nothing(consumer):
    done = run_child(consumer.endpoint, 50_000, 30.0)
    assert done.returncode == 0, done.stderr
    wait_until(lambda: len(consumer.events) == 50_000)
    assert [e.id for e in consumer.events] == list(range(1, 50_001))
    assert "recorded 50000" in done.stdout
    assert "dropped 0 in_ring 0" in done.stdout


def test_a_host_whose_daemon_is_unreachable_still_exits_and_counts_the_loss():
    endpoint = f"tcp://127.0.0.1:{free_tcp_port()}"
    done = run_child(endpoint, 20_000, 0.5)
    assert done.returncode == 0, done.stderr
    assert "recorded 20000" in done.stdout
    assert "dropped 20000 in_ring 0" in done.stdout


class Sleeps(threading.Event):
    """The shipper's wake event, noting how long each of its sleeps was asked to last."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[float] = []
        self.woken = 0

    def wait(self, timeout: float | None = None) -> bool:
        self.asked.append(timeout if timeout is not None else -1.0)
        return super().wait(timeout)

    def set(self) -> None:
        self.woken += 1
        super().set()


def test_a_busy_program_is_shipped_in_fuller_rarer_batches_a_quiet_one_promptly(shippers):
    """After a wake that shipped BUSY_EVENTS or more, the shipper sleeps busy_interval_s
    (fewer cycles: each costs the program GIL hand-offs); after a quiet one, flush_interval_s
    (a quiet program's events reach the store within 50 ms)."""
    from elixirscope.capture.shipper import BUSY_EVENTS

    rec, out = make_recorder(), Collect()
    for n in range(1, BUSY_EVENTS + 1):
        rec.ring.append(event(n))
    shipper = Shipper(rec, CallableSink(out), flush_interval_s=0.01, busy_interval_s=0.2)
    sleeps = shipper._wake = Sleeps()
    shippers.append(shipper.start())
    wait_until(lambda: len(sleeps.asked) >= 1)
    assert len(out.events) == BUSY_EVENTS and sleeps.asked[0] == 0.2
    wait_until(lambda: len(sleeps.asked) >= 3)  # then nothing more: quiet
    assert sleeps.asked[1:3] == [0.01, 0.01]
    rec.ring.append(event(BUSY_EVENTS + 1))  # a few events are not busy
    wait_until(lambda: len(out.events) == BUSY_EVENTS + 1)
    wait_until(lambda: len(sleeps.asked) >= 5)
    assert 0.2 not in sleeps.asked[1:]


def test_a_producer_wakes_the_shipper_at_a_quarter_of_the_ring(shippers):
    """A busy sleep must not leave the program waiting for room: the ring wakes the shipper
    when it holds a quarter of its capacity (the C ring and the Python one alike)."""
    from elixirscope.capture import _select

    rings = [PyRingBuffer(64, "block")]
    if _select.speedups() is not None:
        rings.append(_select.speedups().RingBuffer(64, "block"))
    for ring in rings:
        rec, out = SimpleNamespace(ring=ring, clock=PyHLC()), Collect()
        shipper = Shipper(rec, CallableSink(out), flush_interval_s=30.0, busy_interval_s=30.0)
        sleeps = shipper._wake = Sleeps()
        shippers.append(shipper.start())
        wait_until(lambda s=sleeps: len(s.asked) >= 1)  # asleep, for 30 s
        for n in range(1, 16):
            ring.append(event(n))
        assert sleeps.woken == 0
        ring.append(event(16))
        assert sleeps.woken == 1, ring
        wait_until(lambda o=out: len(o.events) == 16)


def test_a_resized_ring_wakes_the_shipper_at_a_quarter_of_its_new_capacity(shippers):
    rec, out = make_recorder(capacity=64), Collect()
    shipper = Shipper(rec, CallableSink(out), flush_interval_s=0.01)
    shippers.append(shipper.start())
    assert rec.ring._wake_at == 16
    rec.ring.resize(1024)
    wait_until(lambda: rec.ring._wake_at == 256)
