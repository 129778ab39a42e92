"""Recording stays invisible to the program's own memory measurements (tracemalloc):
the ring keeps records encoded outside the Python heap, and while the program traces
its memory the shipper parks batches in a spool instead of building them in the heap."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from types import SimpleNamespace

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ring_support import RING_IMPLS, ring_invariant

from elixirscope.capture.hlc import PyHLC
from elixirscope.capture.shipper import CallableSink, Shipper
from elixirscope.contracts.trace import decode_batch


def _event(n: int, text: str = "") -> tuple:
    return ("custom", n, n, 0, None, 0, "tick", {"text": text} if text else {})


def test_records_waiting_in_the_ring_are_outside_the_python_heap(Ring):
    ring = Ring(1 << 14, "drop_newest", 0.05, 1 << 24)
    records = [_event(n, f"value {n} " * 20) for n in range(10_000)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for record in records:
            assert ring.append(record)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(ring) == 10_000 and ring.stats()["arena_used"] > 10_000 * 200
    assert held < 16 * 1024  # two megabytes of records, none of them on the Python heap
    assert ring.drain() == records


def test_an_arena_full_of_bytes_is_a_full_ring(Ring):
    ring = Ring(1024, "drop_oldest", 0.05, 4096)
    blobs = [bytes([i]) * 300 for i in range(40)]  # 40 x 303 encoded bytes: the arena holds 13
    for blob in blobs:
        assert ring.append(blob)
    s = ring_invariant(ring)
    assert s["dropped_oldest"] == 40 - s["size"] and 10 <= s["size"] <= 13
    assert ring.drain() == blobs[-s["size"] :]  # the newest, in order, intact
    newest = Ring(1024, "drop_newest", 0.05, 4096)
    kept = [newest.append(blob) for blob in blobs]
    assert kept == [True] * kept.count(True) + [False] * kept.count(False)
    assert newest.drain() == blobs[: kept.count(True)]
    big = bytes(2000)  # more than a quarter of the arena: kept as bytes of its own
    assert ring.append(big) and ring.append(b"after")
    assert ring.stats()["big_records"] == 1
    assert ring.drain() == [big, b"after"]
    ring_invariant(ring)


def test_a_blocking_ring_waits_for_arena_room(Ring):
    ring = Ring(1024, "block", 5.0, 4096)
    got: list = []
    done = threading.Event()

    def consume() -> None:
        while not done.is_set() or len(ring):
            got.extend(ring.drain(3))

    consumer = threading.Thread(target=consume)
    consumer.start()
    sent = [bytes([i % 256]) * (i % 700) for i in range(2000)]
    for blob in sent:
        assert ring.append(blob)
    done.set()
    consumer.join()
    assert got == sent
    assert ring_invariant(ring)["drops"] == 0


def test_what_msgpack_cannot_carry_is_refused_and_counted(Ring):
    ring = Ring(8)
    assert ring.append((1, "a")) is True
    assert ring.append(("custom", {"x": object()})) is False
    assert ring.append(1 << 70) is False  # over 64 bits
    s = ring_invariant(ring)
    assert s["unencodable"] == 2 and s["size"] == 1
    assert ring.drain() == [(1, "a")]


def test_drained_bytes_and_files_are_the_msgpack_of_the_records(Ring, tmp_path):
    ring = Ring(64)
    records = [_event(n, "x" * n) for n in range(10)] + [None, 1.5, "s", b"b", [1, [2]]]
    for record in records:
        ring.append(record)
    n, raw = ring.drain_raw(4)
    assert n == 4 and msgspec.msgpack.decode(raw) == [list(r) for r in records[:4]]
    path = tmp_path / "spooled"
    with open(path, "wb") as out:
        assert ring.drain_to(out.fileno(), 100)[0] == len(records) - 4
    rest = msgspec.msgpack.decode(path.read_bytes())
    assert rest == [list(r) if type(r) is tuple else r for r in records[4:]]
    ring.append(_event(99))
    closed = os.open(os.devnull, os.O_RDONLY)
    os.close(closed)
    with pytest.raises(OSError):
        ring.drain_to(closed, 10)
    assert ring.drain() == [_event(99)]  # a failed write leaves the records in the ring
    ring_invariant(ring)


@pytest.mark.skipif(len(RING_IMPLS) < 2, reason="the C accelerator is not built")
@settings(max_examples=40, deadline=None)
@given(
    ops=st.lists(
        st.one_of(st.integers(0, 1500), st.just(-1), st.just(-2)), min_size=1, max_size=80
    ),
    capacity_log2=st.integers(0, 6),
    policy=st.sampled_from(["drop_oldest", "drop_newest"]),
)
def test_c_and_python_rings_keep_the_same_records(ops, capacity_log2, policy):
    """Records of any size (byte strings), drains of 3 (-1) and resizes (-2) in a small
    arena: both rings keep, drop and count exactly the same."""
    rings = [impl.values[0](1 << capacity_log2, policy, 0.05, 4096) for impl in RING_IMPLS]
    for step, op in enumerate(ops):
        if op == -1:
            assert rings[0].drain(3) == rings[1].drain(3)
        elif op == -2:
            for ring in rings:
                ring.resize(1 << ((capacity_log2 + step) % 7))
        else:
            blob = bytes([step % 256]) * op
            assert rings[0].append(blob) == rings[1].append(blob)
    stats = [ring_invariant(ring) for ring in rings]
    for key in ("writes", "reads", "size", "drops", "dropped_oldest", "dropped_newest"):
        assert stats[0][key] == stats[1][key], key
    assert rings[0].drain() == rings[1].drain()


class Collect:
    def __init__(self) -> None:
        self.batches: list = []

    def __call__(self, frame: bytes, count: int) -> None:
        self.batches.append(decode_batch(frame))

    @property
    def ids(self) -> list[int]:
        return [e.id for b in self.batches for e in b.events]


def test_the_shipper_parks_batches_while_the_program_traces_its_memory(Ring):
    rec = SimpleNamespace(ring=Ring(1 << 12, "drop_oldest"), clock=PyHLC())
    out = Collect()
    shipper = Shipper(rec, CallableSink(out), batch_size=100, flush_interval_s=0.01,
                      register_atexit=False).start()
    try:
        tracemalloc.start()
        try:
            for n in range(1, 501):
                rec.ring.append(_event(n))
            deadline = time.monotonic() + 30
            while shipper.stats()["spooled"] < 500 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert shipper.stats()["spooled"] == 500 and out.batches == []  # parked, not sent
            assert len(rec.ring) == 0
        finally:
            tracemalloc.stop()
        for n in range(501, 601):
            rec.ring.append(_event(n))
        assert shipper.flush(timeout=30)
        assert out.ids == list(range(1, 601))  # in order: the spool first
        assert shipper.stats()["spool_waiting"] == 0
    finally:
        shipper.close(timeout=5)


def test_closing_ships_what_the_spool_holds(Ring):
    rec = SimpleNamespace(ring=Ring(1 << 12, "drop_oldest"), clock=PyHLC())
    out = Collect()
    shipper = Shipper(rec, CallableSink(out), batch_size=50, flush_interval_s=0.01,
                      register_atexit=False).start()
    tracemalloc.start()
    try:
        for n in range(1, 201):
            rec.ring.append(_event(n))
        deadline = time.monotonic() + 30
        while shipper.stats()["spooled"] < 200 and time.monotonic() < deadline:
            time.sleep(0.01)
        shipper.close(timeout=5)  # still tracing: closing ships anyway
    finally:
        tracemalloc.stop()
    assert out.ids == list(range(1, 201))
    stats = shipper.stats()
    assert stats["events_dropped"] == 0 and stats["events_shipped"] == 200


LEAK_TEST = '''
import gc
import sys
import tracemalloc


class Account:
    def __init__(self, owner):
        self.owner = owner
        self.balance = 0
        self.history = []

    def deposit(self, amount, note):
        self.balance = self.balance + amount
        self.last_note = note
        self.count = len(self.history)
        return describe(self.owner, amount, note)


def describe(owner, amount, note):
    return f"{owner}:{amount}:{note}"


def work(account, n):
    for i in range(n):
        account.deposit(i % 7, "note-%d" % (i % 13))


tracemalloc.start()
account = Account("ada")
work(account, 1000)  # warm-up
gc.collect()
before = tracemalloc.get_traced_memory()[0]
work(account, 10_000)
gc.collect()
growth = tracemalloc.get_traced_memory()[0] - before
print(growth)
assert growth < int(sys.argv[1]), f"memory grew by {growth} bytes over 10,000 iterations"
'''

LEAK_BOUND = 64 * 1024
"""What the program allows itself (about 6 bytes an iteration); recording at level full
used to add 7 to 10 MB, the records held in the ring until shipped."""


@pytest.mark.parametrize("runtime", [p.id for p in RING_IMPLS])
def test_a_leak_test_recorded_at_level_full_sees_no_recording(runtime, tmp_path):
    script = tmp_path / "leak_test.py"
    script.write_text(LEAK_TEST)
    data_dir = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if k != "ELIXIRSCOPE_NO_SPEEDUPS"}
    if runtime == "python":
        env["ELIXIRSCOPE_NO_SPEEDUPS"] = "1"

    def elixirscope(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "elixirscope", *args], capture_output=True,
                              text=True, env=env, timeout=300, cwd=tempfile.gettempdir())

    done = elixirscope("run", "--level", "full", "--data-dir", str(data_dir), str(script),
                       str(LEAK_BOUND))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == ""  # nothing dropped
    # and it was all recorded: every attribute change of the account, as structure
    history = elixirscope("history", "--data-dir", str(data_dir), "Account", "--limit", "1",
                          "--json")
    assert history.returncode == 0, history.stderr
    report = json.loads(history.stdout)
    assert report["total"] == 3 + 3 * 11_000
    assert report["changes"][-1]["new"]["count"] == 0
