"""Lost updates of an object's attribute across threads, found in real recordings: four
threads adding to one ``Stats`` without a lock (each thread reads, then all write in turn:
every round loses three updates), the same program with a ``threading.Lock`` (its calls
overlap just as much, its writes are serialised), its threads one after another, and one
thread."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from programs import elixirscope, record

from elixirscope.ai.insights import insights_report
from elixirscope.ai.recording import load_recording

STATS = '''
import sys
import threading

MODE = sys.argv[1]  # race, locked, sequential (the threads one after another), single
THREADS = 1 if MODE == "single" else 4
ROUNDS = 3
AT_ONCE = 1 if MODE in ("sequential", "single") else THREADS
begun = threading.Barrier(AT_ONCE)  # every thread's call of the round has begun
have_read = threading.Barrier(AT_ONCE)  # every thread has read (race)
round_over = threading.Barrier(AT_ONCE)  # every thread has written
turns = threading.Condition()
written = [0]


def wait_turn(turn, round_):
    """The threads write one after another, worker-0 first, in each round."""
    with turns:
        turns.wait_for(lambda: written[0] == round_ * THREADS + turn)


def end_turn():
    with turns:
        written[0] += 1
        turns.notify_all()


class Stats:
    def __init__(self):
        self.total = 0  # + amount: the step is an argument
        self.calls = 0  # + 1: a constant step
        self.weight = 0  # + 2 * amount: always up
        self.balance = 0  # deposits and withdrawals: no step, no trend

    def add(self, amount, turn, round_):
        begun.wait()
        change = amount if (turn + round_) % 2 else -amount
        total, calls, weight, balance = self.total, self.calls, self.weight, self.balance
        if MODE == "race":
            have_read.wait()
            wait_turn(turn, round_)
        self.total = total + amount
        self.calls = calls + 1
        self.weight = weight + 2 * amount
        self.balance = balance + change
        if MODE == "race":
            end_turn()


class LockedStats(Stats):
    def __init__(self):
        super().__init__()
        self.lock = threading.Lock()

    def add(self, amount, turn, round_):
        begun.wait()
        change = amount if (turn + round_) % 2 else -amount
        with self.lock:
            self.total = self.total + amount
            self.calls += 1
            self.weight = self.weight + 2 * amount
            self.balance = self.balance + change


def work(stats, turn):
    for round_ in range(ROUNDS):
        stats.add((THREADS - turn) * 10 + round_, turn, round_)
        round_over.wait()


stats = LockedStats() if MODE == "locked" else Stats()
workers = [
    threading.Thread(target=work, args=(stats, turn), name=f"worker-{turn}")
    for turn in range(THREADS)
]
for worker in workers:
    worker.start()
    if MODE == "sequential":
        worker.join()
for worker in workers:
    worker.join()
print(stats.total, stats.calls, stats.weight, stats.balance)
'''
"""Round r: worker-t adds (4 - t) * 10 + r. Raced, every worker reads the same values and
they write in turn, so each round keeps only worker-3's update: 33 instead of 312."""

LOOKED_FOR = "lost updates of an object's attributes across threads"
WORKERS = ["worker-0", "worker-1", "worker-2", "worker-3"]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    where = tmp_path_factory.mktemp("lost-updates")
    jobs = {mode: (mode, "full") for mode in ("race", "locked", "sequential", "single")} | {
        "race_args": ("race", "args")
    }
    with ThreadPoolExecutor(len(jobs)) as pool:  # each its own script: no file written twice
        futures = {
            name: pool.submit(record, where, f"stats_{name}", STATS, mode, level=level)
            for name, (mode, level) in jobs.items()
        }
        return {name: f.result() for name, f in futures.items()}


def _lost(data: Path) -> dict[str, dict[str, Any]]:
    """The lost-update findings of the run, by attribute."""
    found = insights_report(data)["findings"]
    return {f["details"]["attribute"]: f for f in found if f["kind"] == "lost_update"}


def _insights(data: Path) -> str:
    done = elixirscope("insights", "--data-dir", str(data), cwd=data.parent)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_threads_adding_without_a_lock_lose_updates_and_the_values_show_which(recorded) -> None:
    found = _lost(recorded["race"])
    assert {a: f["severity"] for a, f in found.items()} == {
        "total": "high",  # the step is the call's amount
        "calls": "high",  # the step is 1
        "weight": "high",  # no known step: it went down over another thread's write
        "balance": "medium",  # no known step, no trend: only the overlap is seen
    }
    total = found["total"]
    assert total["title"] == "lost update: Stats.total written by 4 threads at once in Stats.add"
    details = total["details"]
    assert details["threads"] == WORKERS
    assert (details["writes"], details["calls"], details["step"]) == (12, 12, "+ amount")
    # each round: worker-1, -2 and -3 read what worker-0 read and wrote over the one before
    assert details["lost_updates"] == details["overwritten_writes"] == details["backwards"] == 9
    first = details["first"]
    assert first["read"] == "0"
    assert (first["write"]["thread"], first["write"]["value"]) == ("worker-1", "30")
    assert first["write"]["args"] == {"self": "<Stats>", "amount": "30", "turn": "1", "round_": "0"}
    assert (first["overwritten"]["thread"], first["overwritten"]["value"]) == ("worker-0", "40")
    assert first["overwritten"]["args"]["amount"] == "40"
    assert first["write"]["call_began"] < first["overwritten"]["ts"] < first["write"]["ts"]
    said = total["explanation"]
    assert "Stats.add ran on 4 threads (worker-0, worker-1, worker-2, worker-3) at once" in said
    assert "9 writes were computed from a value another thread had already replaced" in said
    assert "`total` went backwards 9 times" in said
    assert "worker-1's Stats.add(amount=30, turn=1, round_=0)" in said
    assert "read 0 and wrote 30" in said and "over 40, which worker-0's Stats.add(amount=40" in said
    assert "The calls' `amount` add up to 312, yet `total` went from 0 to 33: 279 lost." in said
    assert "threading.Lock" in total["fix"] and "queue.Queue" in total["fix"]
    # the evidence: worker-1's call begins, worker-0 writes 40, worker-1 writes 30 over it
    assert [(e["type"], e["note"]) for e in total["evidence"]] == [
        ("call", "worker-1 begins Stats.add"),
        ("attr", "worker-0 writes total = 40 (lost)"),
        ("attr", "worker-1 writes total = 30 over it"),
    ]
    write = total["evidence"][-1]
    assert total["moment"] == write
    assert f"&ev={write['producer']}:{write['id']}" in total["cinema"]
    window_from = int(total["cinema"].split("&w0=")[1].split("&")[0])
    assert window_from < total["evidence"][0]["ts"]  # the link's window shows all of it
    source = STATS.splitlines()
    roles = {loc["role"]: source[loc["line"] - 1].strip() for loc in total["locations"]}
    assert roles == {
        "the method": "def add(self, amount, turn, round_):",
        "reads total": "total, calls, weight, balance = self.total, self.calls, self.weight, self.balance",
        "writes total": "self.total = total + amount",
    }

    calls = found["calls"]["details"]
    assert (calls["step"], calls["lost_updates"], calls["first"]["read"]) == ("+1", 9, "0")
    assert (calls["first"]["write"]["value"], calls["first"]["overwritten"]["value"]) == ("1", "1")

    weight = found["weight"]
    assert weight["details"]["step"] is None and weight["details"]["backwards"] == 9
    assert (
        "Each of the 3 writes no other thread came between moved `weight` up, yet 9 writes took it down"
        in weight["explanation"]
    )

    balance = found["balance"]
    assert balance["title"].startswith("possible lost update: Stats.balance")
    assert balance["details"]["lost_updates"] == 0 and balance["details"]["contested_writes"] == 9
    assert "If a lock serialises them, this is no defect." in balance["explanation"]

    shown = _insights(recorded["race"])
    assert "4 findings: 3 high, 1 medium" in shown
    assert "lost update: Stats.total written by 4 threads at once in Stats.add" in shown


def _contested(data: Path) -> int:
    """Writes of ``total`` after which another thread's write fell between the start of
    their call and the write: what timing alone would call a race."""
    recording = load_recording(data)
    writes = sorted(
        (se for se in recording.of("attr") if se.event.name == "total"), key=lambda se: se.ts
    )
    count = 0
    for i, se in enumerate(writes):
        call = recording.call(se.producer, se.event.call_id)
        count += any(o.event.thread != se.event.thread and call.ts < o.ts for o in writes[:i])
    return count


def test_the_same_threads_with_a_lock_overlap_as_much_and_lose_nothing(recorded) -> None:
    data = recorded["locked"]
    assert _contested(data) >= 3  # the calls overlap: each round's later writers waited
    assert _lost(data) == {}
    shown = _insights(data)
    assert "no findings" in shown and LOOKED_FOR in shown


@pytest.mark.parametrize("run", ["sequential", "single"])
def test_one_thread_at_a_time_is_no_lost_update(recorded, run) -> None:
    data = recorded[run]
    recording = load_recording(data)
    threads = {se.event.name for se in recording.of("thread")}
    assert threads >= (set(WORKERS) if run == "sequential" else {"worker-0"})
    assert len([se for se in recording.of("attr") if se.event.name == "total"]) == 1 + (
        12 if run == "sequential" else 3
    )  # the main thread's 0, then each call's
    assert _lost(data) == {}
    shown = _insights(data)
    assert "no findings" in shown and LOOKED_FOR in shown


def test_without_level_full_no_attribute_is_recorded_and_the_report_says_so(recorded) -> None:
    data = recorded["race_args"]
    assert load_recording(data).of("attr") == []
    shown = _insights(data)
    assert "no findings" in shown and f"{LOOKED_FOR} (attribute writes: --level full)" in shown
