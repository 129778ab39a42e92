"""Lossless by default: the program waits for the shipper; a stuck pipeline turns into
counted drops, said once on stderr, and the host goes on."""

from __future__ import annotations

import threading

import pytest

from elixirscope.capture import recorder
from elixirscope.capture.session import DEFAULT_POLICY, start_capture
from elixirscope.contracts.trace import decode_batch


@pytest.fixture(autouse=True)
def _no_recorder():
    recorder.uninstall()
    yield
    recorder.uninstall()


class Collect:
    """A sink keeping every batch's events and drop count; ``gate`` holds it up."""

    def __init__(self, gate: threading.Event | None = None, fail: bool = False) -> None:
        self.events = 0
        self.dropped = 0
        self.runs: set[str] = set()
        self.gate = gate
        self.fail = fail

    def __call__(self, frame: bytes, count: int) -> None:
        if self.gate is not None:
            self.gate.wait()
        if self.fail:
            raise OSError("disk full")
        batch = decode_batch(frame)
        # the session's own thread announcements (ThreadStart) are not the program's events
        self.events += sum(1 for e in batch.events if type(e).__name__ != "ThreadStart")
        self.dropped += batch.dropped
        self.runs.add(batch.run)


def test_the_default_policy_blocks_and_a_burst_far_bigger_than_the_ring_loses_nothing():
    assert DEFAULT_POLICY == "block"
    sink = Collect()
    session = start_capture(sink=sink, ring_size=1024, batch_size=100)
    rec = recorder.current()
    for i in range(60_000):  # 58 rings' worth, as fast as the program can record
        rec.emit("custom", "tick", {"i": str(i)})
    stats = session.stop(timeout=60)
    assert stats["events_dropped"] == 0 and stats["drop_reasons"] == {}
    assert sink.events == 60_000 and sink.dropped == 0
    assert stats["ring"]["block_waits"] > 0  # the program did wait for the shipper
    assert sink.runs == {session.run_id}  # every batch names its run


def test_a_stuck_pipeline_turns_into_counted_drops_and_says_so_once(capsys):
    gate = threading.Event()
    sink = Collect(gate)
    session = start_capture(sink=sink, ring_size=1024, batch_size=100, stall_timeout_s=0.2)
    rec = recorder.current()
    for i in range(5_000):  # the sink never returns: the ring fills, waits 0.2 s, then drops
        rec.emit("custom", "tick", {"i": str(i)})
    ring = session.stats()["ring"]
    assert ring["stalls"] == 1 and ring["stalled"] is True
    # a wait or two (the first may end with the room of the shipper's last batch), not one per event
    assert ring["block_waits"] <= 2
    err = capsys.readouterr().err
    assert err.count("made no progress for 0.2 s") == 1 and "capture.stall_timeout_s" in err
    gate.set()
    stats = session.stop(timeout=30)
    assert stats["drop_reasons"] == {"stalled": ring["block_timeouts"]}
    assert sink.events + sink.dropped == 5_000  # every event stored or counted in a batch
    assert sink.dropped == stats["events_dropped"] > 0


def test_a_failing_sink_never_makes_the_program_wait():
    sink = Collect(fail=True)
    announced = threading.active_count()  # the session names each running thread (ThreadStart)
    session = start_capture(sink=sink, ring_size=1024, batch_size=100, stall_timeout_s=30.0)
    rec = recorder.current()
    for i in range(20_000):  # with a 30 s stall timeout this would take minutes if it waited
        rec.emit("custom", "tick", {"i": str(i)})
    stats = session.stop(timeout=5)
    assert stats["ring"]["stalls"] >= 1
    reasons = stats["drop_reasons"]
    assert reasons.get("sink", 0) > 0
    assert stats["events_shipped"] + stats["events_refused"] + stats["ring"]["drops"] \
        + stats["dropped_on_close"] == 20_000 + announced


def test_the_run_record_is_handed_to_a_sink_that_keeps_records():
    kept: list[dict] = []

    class Keeper(Collect):
        def record_run(self, record: dict) -> None:
            kept.append(record)

    session = start_capture(sink=Keeper(), command=["prog.py", "x"])
    recorder.current().emit("custom", "one", {})
    session.stop(exit_status=4)
    start, end = kept
    assert start["id"] == end["id"] == session.run_id and start["ended_ns"] is None
    assert end["command"] == ["prog.py", "x"] and end["exit_status"] == 4
    assert end["ended_ns"] >= end["started_ns"] and end["lost"] == 0


def test_a_bad_run_id_is_refused():
    from elixirscope.contracts import ContractError

    with pytest.raises(ContractError, match="run id"):
        start_capture(sink=Collect(), run="not hex!")
